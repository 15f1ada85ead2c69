package org.starflink.engine.model;

import java.util.ArrayList;
import java.util.List;

/**
 * All weights of a model as float32 arrays on the heap: the reference backend's working form, and an in-memory
 * {@link WeightSource} for models that exist only in memory (random weights for tests and benchmarks).
 *
 * @param tokenEmbedding [vocab, dim]
 * @param layers         one entry per decoder layer
 * @param finalNorm      [dim]
 * @param outputHead     [vocab, dim]; the same array as tokenEmbedding when embeddings are tied
 */
public record ModelWeights(float[] tokenEmbedding, List<LayerWeights> layers, float[] finalNorm, float[] outputHead)
        implements WeightSource {
    public ModelWeights {
        layers = List.copyOf(layers);
    }

    /** Reads every tensor of {@code source} (the whole model, widened: for the reference backend). */
    public static ModelWeights read(WeightSource source, ModelConfig config) {
        if (source instanceof ModelWeights weights) {
            return weights;
        }
        List<LayerWeights> layers = new ArrayList<>(config.layers());
        for (int l = 0; l < config.layers(); l++) {
            layers.add(LayerWeights.read(source, config, l));
        }
        float[] embedding = source.read(WeightName.of(WeightName.Kind.TOKEN_EMBEDDING));
        float[] head = config.tiedEmbeddings() ? embedding : source.read(WeightName.of(WeightName.Kind.OUTPUT_HEAD));
        return new ModelWeights(embedding, layers, source.read(WeightName.of(WeightName.Kind.FINAL_NORM)), head);
    }

    /** The arrays themselves, not copies: callers must not modify them. */
    @Override
    public float[] read(WeightName name) {
        return switch (name.kind()) {
            case TOKEN_EMBEDDING -> tokenEmbedding;
            case FINAL_NORM -> finalNorm;
            case OUTPUT_HEAD -> outputHead;
            default -> layers.get(name.layer()).get(name.kind());
        };
    }
}
