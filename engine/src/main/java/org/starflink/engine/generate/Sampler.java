package org.starflink.engine.generate;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Greedy (temperature 0) or temperature + top-p sampling, deterministic for a seed: the same seed, step and
 * logits give the same token on every machine (the softmax is computed in float64). The random draw of step n
 * depends only on (seed, n), not on earlier draws, so a streaming query host restored from a checkpoint needs
 * no generator state to continue exactly where the single-process generator would.
 */
public final class Sampler {
    private static final long GOLDEN_GAMMA = 0x9E3779B97F4A7C15L;
    private final double temperature;
    private final double topP;
    private final long seed;

    public Sampler(SamplingParams params) {
        this.temperature = params.temperature();
        this.topP = params.topP();
        this.seed = params.seed();
    }

    /** The token for generation step {@code step} (0 for the first generated token). */
    public int next(float[] logits, int step) {
        return temperature == 0 ? argmax(logits) : sample(logits, new SplittableRandom(seed + step * GOLDEN_GAMMA));
    }

    /** The index of the largest logit; the lowest index wins a tie. */
    public static int argmax(float[] logits) {
        int best = 0;
        for (int i = 1; i < logits.length; i++) {
            if (logits[i] > logits[best]) {
                best = i;
            }
        }
        return best;
    }

    private int sample(float[] logits, SplittableRandom random) {
        int vocab = logits.length;
        double max = Double.NEGATIVE_INFINITY;
        for (float l : logits) {
            max = Math.max(max, l);
        }
        double[] probabilities = new double[vocab];
        double sum = 0;
        for (int i = 0; i < vocab; i++) {
            probabilities[i] = Math.exp((logits[i] - max) / temperature);
            sum += probabilities[i];
        }
        Integer[] order = new Integer[vocab];
        for (int i = 0; i < vocab; i++) {
            order[i] = i;
            probabilities[i] /= sum;
        }
        // Nucleus: the smallest set of most likely tokens whose mass reaches top-p (ties broken by id).
        Arrays.sort(order, (a, b) -> probabilities[a] != probabilities[b]
                ? Double.compare(probabilities[b], probabilities[a]) : Integer.compare(a, b));
        double mass = 0;
        int kept = 0;
        while (kept < vocab && (kept == 0 || mass < topP)) {
            mass += probabilities[order[kept++]];
        }
        double r = random.nextDouble() * mass;
        double cumulative = 0;
        for (int i = 0; i < kept; i++) {
            cumulative += probabilities[order[i]];
            if (r < cumulative) {
                return order[i];
            }
        }
        return order[kept - 1];
    }
}
