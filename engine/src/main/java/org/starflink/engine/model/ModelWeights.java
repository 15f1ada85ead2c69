package org.starflink.engine.model;

import java.util.List;

/**
 * All weights of a model, widened to float32 on the heap.
 *
 * @param tokenEmbedding [vocab, dim]
 * @param layers         one entry per decoder layer
 * @param finalNorm      [dim]
 * @param outputHead     [vocab, dim]; the same array as tokenEmbedding when embeddings are tied
 */
public record ModelWeights(float[] tokenEmbedding, List<LayerWeights> layers, float[] finalNorm, float[] outputHead) {
    public ModelWeights {
        layers = List.copyOf(layers);
    }
}
