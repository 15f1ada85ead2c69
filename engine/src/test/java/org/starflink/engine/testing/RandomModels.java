package org.starflink.engine.testing;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.Set;
import org.starflink.engine.model.LayerWeights;
import org.starflink.engine.model.ModelConfig;
import org.starflink.engine.model.ModelWeights;
import org.starflink.engine.model.RopeScaling;
import org.starflink.engine.model.RopeStyle;

/** Small random Llama models in memory, for tests that need shapes rather than knowledge. */
public final class RandomModels {
    private RandomModels() {
    }

    /** A Llama config: GQA when kvHeads < heads, Hugging Face RoPE halves. */
    public static ModelConfig config(int dim, int layers, int heads, int kvHeads, int vocab) {
        return new ModelConfig("test", dim, dim * 3 / 2 + 4, layers, heads, kvHeads, dim / heads, vocab, 4096,
                10000.0, RopeStyle.HALVES, null, 1e-5, false, false, 1, Set.of(2));
    }

    /** The same with llama3 rope scaling and q/k/v biases, to cover every optional path. */
    public static ModelConfig configWithExtras(int dim, int layers, int heads, int kvHeads, int vocab) {
        return new ModelConfig("test", dim, dim * 3 / 2 + 4, layers, heads, kvHeads, dim / heads, vocab, 4096,
                500000.0, RopeStyle.HALVES, new RopeScaling(8.0, 1.0, 4.0, 64), 1e-5, true, false, 1, Set.of(2));
    }

    public static ModelWeights weights(ModelConfig c, long seed) {
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

    /** Entries ~ N(0, 1/in): activations keep their scale through the layers. */
    public static float[] matrix(Random random, int out, int in) {
        float[] m = new float[out * in];
        double scale = 1.0 / Math.sqrt(in);
        for (int i = 0; i < m.length; i++) {
            m[i] = (float) (random.nextGaussian() * scale);
        }
        return m;
    }

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

    public static int[] tokens(Random random, int count, int vocab) {
        int[] t = new int[count];
        for (int i = 0; i < count; i++) {
            t[i] = 3 + random.nextInt(vocab - 3);
        }
        return t;
    }

    public static double maxAbsDiff(float[] a, float[] b) {
        if (a.length != b.length) {
            throw new AssertionError("length " + a.length + " != " + b.length);
        }
        double max = 0;
        for (int i = 0; i < a.length; i++) {
            if (Float.isInfinite(a[i]) && a[i] == b[i]) {
                continue;
            }
            max = Math.max(max, Math.abs((double) a[i] - b[i]));
        }
        return max;
    }
}
