package org.starflink.engine.model;

import java.util.Set;

/**
 * The shape and numerics of a Llama-family decoder. Everything the forward pass needs to know about a model
 * that is not a weight.
 *
 * @param architecture    the checkpoint's architecture name, for messages ("LlamaForCausalLM", "llama2.c")
 * @param dim             hidden size d
 * @param hiddenDim       SwiGLU intermediate size
 * @param layers          number of decoder layers
 * @param heads           query heads H
 * @param kvHeads         key/value heads Hkv (H % Hkv == 0; grouped-query attention when smaller)
 * @param headDim         size of one head (usually d / H)
 * @param vocabSize       number of token ids
 * @param maxPositions    the context window the model was trained for
 * @param ropeTheta       RoPE base
 * @param ropeStyle       which dimension pairs RoPE rotates
 * @param ropeScaling     Llama 3.1 scaling, or null
 * @param rmsNormEps      epsilon of every RMSNorm
 * @param qkvBias         whether q/k/v projections carry a bias (Qwen2)
 * @param tiedEmbeddings  whether the output head reuses the token embedding
 * @param bosId           beginning-of-sequence token id
 * @param eosIds          ids that end generation
 */
public record ModelConfig(
        String architecture,
        int dim,
        int hiddenDim,
        int layers,
        int heads,
        int kvHeads,
        int headDim,
        int vocabSize,
        int maxPositions,
        double ropeTheta,
        RopeStyle ropeStyle,
        RopeScaling ropeScaling,
        double rmsNormEps,
        boolean qkvBias,
        boolean tiedEmbeddings,
        int bosId,
        Set<Integer> eosIds) {

    public ModelConfig {
        require(dim > 0 && hiddenDim > 0 && layers > 0 && heads > 0 && kvHeads > 0 && headDim > 0 && vocabSize > 0,
                "sizes must be positive");
        require(heads % kvHeads == 0, "heads (" + heads + ") must be a multiple of kv heads (" + kvHeads + ")");
        require(headDim % 2 == 0, "head size must be even for RoPE, got " + headDim);
        require(maxPositions > 0, "max positions must be positive");
        eosIds = Set.copyOf(eosIds);
    }

    /** Query heads per KV head. */
    public int groupSize() {
        return heads / kvHeads;
    }

    /** Width of all query heads together: H * headDim. */
    public int queryWidth() {
        return heads * headDim;
    }

    /** Width of all KV heads together: Hkv * headDim. */
    public int kvWidth() {
        return kvHeads * headDim;
    }

    /** Approximate parameter count, for reports. */
    public long parameterCount() {
        long perLayer = (long) dim * queryWidth() * 2 + (long) dim * kvWidth() * 2 + 3L * dim * hiddenDim + 2L * dim;
        long embeddings = (long) vocabSize * dim * (tiedEmbeddings ? 1 : 2);
        return perLayer * layers + embeddings + dim;
    }

    private static void require(boolean condition, String message) {
        if (!condition) {
            throw new org.starflink.engine.EngineException("invalid model config: " + message);
        }
    }
}
