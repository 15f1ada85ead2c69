package org.starflink.engine.model;

/**
 * One decoder layer's weights as row-major float32 matrices in Hugging Face orientation: a projection from
 * width {@code in} to width {@code out} is stored [out, in], so y = W x.
 *
 * @param attentionNorm [dim]
 * @param wq            [H*hd, dim]
 * @param wk            [Hkv*hd, dim]
 * @param wv            [Hkv*hd, dim]
 * @param bq            [H*hd] or null
 * @param bk            [Hkv*hd] or null
 * @param bv            [Hkv*hd] or null
 * @param wo            [dim, H*hd]
 * @param ffnNorm       [dim]
 * @param wGate         [hidden, dim] (w1 in llama2.c)
 * @param wUp           [hidden, dim] (w3 in llama2.c)
 * @param wDown         [dim, hidden] (w2 in llama2.c)
 */
public record LayerWeights(
        float[] attentionNorm,
        float[] wq, float[] wk, float[] wv,
        float[] bq, float[] bk, float[] bv,
        float[] wo,
        float[] ffnNorm,
        float[] wGate, float[] wUp, float[] wDown) {
}
