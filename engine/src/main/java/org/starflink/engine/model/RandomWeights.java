package org.starflink.engine.model;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * Random weights for any config: synthetic models whose speed, not knowledge, is measured (benchmarks), and
 * whose shapes, not values, matter (tests). Entries of a [out, in] matrix are ~N(0, 1/in) so activations keep
 * their scale through the layers; norms are ~1.
 */
public final class RandomWeights {
    private RandomWeights() {
    }

    public static ModelWeights create(ModelConfig c, long seed) {
        Random random = new Random(seed);
        int dim = c.dim();
        List<LayerWeights> layers = new ArrayList<>();
        for (int l = 0; l < c.layers(); l++) {
            layers.add(new LayerWeights(
                    norm(random, dim),
                    matrix(random, c.queryWidth(), dim), matrix(random, c.kvWidth(), dim),
                    matrix(random, c.kvWidth(), dim),
                    c.qkvBias() ? vector(random, c.queryWidth()) : null,
                    c.qkvBias() ? vector(random, c.kvWidth()) : null,
                    c.qkvBias() ? vector(random, c.kvWidth()) : null,
                    matrix(random, dim, c.queryWidth()),
                    norm(random, dim),
                    matrix(random, c.hiddenDim(), dim), matrix(random, c.hiddenDim(), dim),
                    matrix(random, dim, c.hiddenDim())));
        }
        float[] embedding = matrix(random, c.vocabSize(), dim);
        float[] head = c.tiedEmbeddings() ? embedding : matrix(random, c.vocabSize(), dim);
        return new ModelWeights(embedding, layers, norm(random, dim), head);
    }

    public static float[] matrix(Random random, int out, int in) {
        float[] m = new float[out * in];
        double scale = 1.0 / Math.sqrt(in);
        for (int i = 0; i < m.length; i++) {
            m[i] = (float) (random.nextGaussian() * scale);
        }
        return m;
    }

    /** Entries ~N(0, 0.01). */
    public static float[] vector(Random random, int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) (random.nextGaussian() * 0.1);
        }
        return v;
    }

    private static float[] norm(Random random, int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) (1 + random.nextGaussian() * 0.1);
        }
        return v;
    }

    /** Random token ids in [3, vocab): clear of the usual special ids 0-2. */
    public static int[] tokens(Random random, int count, int vocab) {
        int[] t = new int[count];
        for (int i = 0; i < count; i++) {
            t[i] = 3 + random.nextInt(vocab - 3);
        }
        return t;
    }
}
