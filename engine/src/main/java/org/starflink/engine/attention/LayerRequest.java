package org.starflink.engine.attention;

/**
 * What the query host sends to every context block for one layer of one pass: the query rows, RoPE applied.
 * A block answers with the {@link AttentionPartial} of these rows over its KV.
 *
 * @param layer     decoder layer
 * @param positions [T] position of each query row (N, N+1, ... for the question, then generated tokens)
 * @param q         [T, H, headDim]
 */
public record LayerRequest(int layer, int[] positions, float[] q) {

    public int rows() {
        return positions.length;
    }
}
