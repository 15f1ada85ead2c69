package org.starflink.engine.model;

import static org.starflink.engine.model.WeightName.Kind;

/**
 * One decoder layer's weights as row-major float32 matrices in Hugging Face orientation (shapes in
 * {@link WeightName.Kind}); the biases are null unless the model has q/k/v biases.
 */
public record LayerWeights(
        float[] attentionNorm,
        float[] wq, float[] wk, float[] wv,
        float[] bq, float[] bk, float[] bv,
        float[] wo,
        float[] ffnNorm,
        float[] wGate, float[] wUp, float[] wDown) {

    static LayerWeights read(WeightSource source, ModelConfig config, int layer) {
        boolean bias = config.qkvBias();
        return new LayerWeights(
                source.read(WeightName.of(Kind.ATTENTION_NORM, layer)),
                source.read(WeightName.of(Kind.WQ, layer)),
                source.read(WeightName.of(Kind.WK, layer)),
                source.read(WeightName.of(Kind.WV, layer)),
                bias ? source.read(WeightName.of(Kind.BQ, layer)) : null,
                bias ? source.read(WeightName.of(Kind.BK, layer)) : null,
                bias ? source.read(WeightName.of(Kind.BV, layer)) : null,
                source.read(WeightName.of(Kind.WO, layer)),
                source.read(WeightName.of(Kind.FFN_NORM, layer)),
                source.read(WeightName.of(Kind.W_GATE, layer)),
                source.read(WeightName.of(Kind.W_UP, layer)),
                source.read(WeightName.of(Kind.W_DOWN, layer)));
    }

    float[] get(Kind kind) {
        float[] tensor = switch (kind) {
            case ATTENTION_NORM -> attentionNorm;
            case WQ -> wq;
            case WK -> wk;
            case WV -> wv;
            case BQ -> bq;
            case BK -> bk;
            case BV -> bv;
            case WO -> wo;
            case FFN_NORM -> ffnNorm;
            case W_GATE -> wGate;
            case W_UP -> wUp;
            case W_DOWN -> wDown;
            default -> throw new IllegalArgumentException(kind + " is not a layer tensor");
        };
        if (tensor == null) {
            throw new IllegalArgumentException("this model has no " + kind);
        }
        return tensor;
    }
}
