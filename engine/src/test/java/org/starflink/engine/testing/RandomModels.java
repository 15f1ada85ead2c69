package org.starflink.engine.testing;

import java.util.Random;
import java.util.Set;
import org.starflink.engine.model.ModelConfig;
import org.starflink.engine.model.ModelWeights;
import org.starflink.engine.model.RandomWeights;
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
        return RandomWeights.create(c, seed);
    }

    public static float[] vector(Random random, int n) {
        return RandomWeights.vector(random, n);
    }

    public static int[] tokens(Random random, int count, int vocab) {
        return RandomWeights.tokens(random, count, vocab);
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
