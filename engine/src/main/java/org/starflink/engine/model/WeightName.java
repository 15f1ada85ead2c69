package org.starflink.engine.model;

/**
 * One weight tensor of a Llama decoder, by role. Shapes are row-major in Hugging Face orientation (a projection
 * from width {@code in} to width {@code out} is [out, in], so y = W x).
 *
 * @param kind  which tensor
 * @param layer the decoder layer, or -1 for tensors outside the layers
 */
public record WeightName(Kind kind, int layer) {

    public enum Kind {
        /** [vocab, dim] */
        TOKEN_EMBEDDING(false),
        /** [dim] */
        ATTENTION_NORM(true),
        /** [H*hd, dim] */
        WQ(true),
        /** [Hkv*hd, dim] */
        WK(true),
        /** [Hkv*hd, dim] */
        WV(true),
        /** [H*hd], only with qkvBias */
        BQ(true),
        /** [Hkv*hd], only with qkvBias */
        BK(true),
        /** [Hkv*hd], only with qkvBias */
        BV(true),
        /** [dim, H*hd] */
        WO(true),
        /** [dim] */
        FFN_NORM(true),
        /** [hidden, dim] (w1 in llama2.c) */
        W_GATE(true),
        /** [hidden, dim] (w3 in llama2.c) */
        W_UP(true),
        /** [dim, hidden] (w2 in llama2.c) */
        W_DOWN(true),
        /** [dim] */
        FINAL_NORM(false),
        /** [vocab, dim]; the token embedding when embeddings are tied */
        OUTPUT_HEAD(false);

        final boolean perLayer;

        Kind(boolean perLayer) {
            this.perLayer = perLayer;
        }
    }

    public WeightName {
        if (kind.perLayer != (layer >= 0)) {
            throw new IllegalArgumentException(kind + (kind.perLayer ? " needs a layer" : " has no layer"));
        }
    }

    public static WeightName of(Kind kind) {
        return new WeightName(kind, -1);
    }

    public static WeightName of(Kind kind, int layer) {
        return new WeightName(kind, layer);
    }

    /** The tensor's shape under {@code c}. */
    public int[] shape(ModelConfig c) {
        return switch (kind) {
            case TOKEN_EMBEDDING, OUTPUT_HEAD -> new int[] {c.vocabSize(), c.dim()};
            case ATTENTION_NORM, FFN_NORM, FINAL_NORM -> new int[] {c.dim()};
            case WQ -> new int[] {c.queryWidth(), c.dim()};
            case WK, WV -> new int[] {c.kvWidth(), c.dim()};
            case BQ -> new int[] {c.queryWidth()};
            case BK, BV -> new int[] {c.kvWidth()};
            case WO -> new int[] {c.dim(), c.queryWidth()};
            case W_GATE, W_UP -> new int[] {c.hiddenDim(), c.dim()};
            case W_DOWN -> new int[] {c.dim(), c.hiddenDim()};
        };
    }

    @Override
    public String toString() {
        return layer < 0 ? kind.name().toLowerCase() : "layer " + layer + " " + kind.name().toLowerCase();
    }
}
