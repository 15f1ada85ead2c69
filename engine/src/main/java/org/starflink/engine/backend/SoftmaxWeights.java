package org.starflink.engine.backend;

/**
 * The softmax step of the CPU attention loops, in one place so that both loop nests ({@link CpuKernels}' per pair
 * loop and {@link StackedAttention}) compute the same bits: a score row becomes its unnormalized weights
 * {@code exp(score - max)}, and their sum is taken in one fixed order.
 *
 * <p>Why not {@code (float) Math.exp}: it is a scalar call per key, and was most of the attention's time once the
 * products ran in SIMD. The exp here is written from float additions, multiplications and bit moves only, which the
 * JIT turns into SIMD ({@code bin/benchmark attention-kernel-vs}, docs/performance.md, session 12). Each weight is
 * within one ulp of the exact value over the whole normal range ({@code SoftmaxWeightsTest} checks about 1.1 million
 * gaps and prints the worst error); a weight below 2^-126.5 is 0, where it is nothing next to the row's largest,
 * which is 1.
 *
 * <p>The sum runs in eight interleaved lanes (key s into lane s mod 8, each lane in key order) over the keys up to the
 * last multiple of 8, the lanes combined pairwise, then the rest in key order: eight independent chains of additions
 * instead of one, and a fixed order all the same, so a row's sum does not depend on the rows it is stacked with. A
 * masked key's weight is exactly 0 and adds nothing.
 */
final class SoftmaxWeights {
    private static final float LOG2_E = 1.44269504088896341f;
    /** 1.5 * 2^23: adding it rounds |t| < 2^22 to an integer, which then sits in the low bits of the sum's mantissa. */
    private static final float ROUNDER = 0x1.8p23f;
    private static final int ROUNDER_BITS = Float.floatToRawIntBits(ROUNDER);
    /** ln 2 split in two (Cody and Waite): n * LN2_HIGH is exact for the n here, so x - n ln 2 loses nothing. */
    private static final float LN2_HIGH = 0.693359375f;
    private static final float LN2_LOW = -2.12194440e-4f;
    /** e^-104 is far below float's smallest normal; clamping there keeps n in [-150, 0] (x <= 0) and -inf finite. */
    private static final float LOWEST = -104f;

    private SoftmaxWeights() {
    }

    /**
     * {@code scores[s] = exp(scores[s] - max)} for s in [0, count); returns their sum in the lane order above.
     * {@code scratch} holds at least {@code count} floats; {@code max} is finite and no score exceeds it.
     */
    static float weigh(float[] scores, int count, float max, float[] scratch) {
        // two loops, not one: the JIT vectorizes each on its own but not their fusion (found by hand, not committed)
        for (int s = 0; s < count; s++) {
            float x = Math.max(scores[s] - max, LOWEST);
            float shifted = x * LOG2_E + ROUNDER;
            scores[s] = expReduced(x, shifted - ROUNDER);
            scratch[s] = shifted;
        }
        for (int s = 0; s < count; s++) {
            scores[s] = scores[s] * powerOfTwo(scratch[s]);
        }
        return laneSum(scores, count);
    }

    /**
     * e^(x - n ln 2) for the integer n nearest x / ln 2, so the argument r is in [-ln 2 / 2, ln 2 / 2]: Cephes'
     * degree-6 polynomial for expf, 1 + r + r^2 P(r).
     */
    private static float expReduced(float x, float n) {
        float r = (x - n * LN2_HIGH) - n * LN2_LOW;
        float p = 1.9875691500E-4f;
        p = p * r + 1.3981999507E-3f;
        p = p * r + 8.3334519073E-3f;
        p = p * r + 4.1665795894E-2f;
        p = p * r + 1.6666665459E-1f;
        p = p * r + 5.0000001201E-1f;
        return (p * (r * r) + r) + 1f;
    }

    /** 2^n for the n that {@code shifted} (n + ROUNDER) holds, as a float's exponent field; 0 for n < -126. */
    private static float powerOfTwo(float shifted) {
        int biased = Float.floatToRawIntBits(shifted) - ROUNDER_BITS + 127;
        return Float.intBitsToFloat(Math.max(biased, 0) << 23);
    }

    private static float laneSum(float[] values, int count) {
        float l0 = 0f, l1 = 0f, l2 = 0f, l3 = 0f, l4 = 0f, l5 = 0f, l6 = 0f, l7 = 0f;
        int s = 0;
        for (; s + 8 <= count; s += 8) {
            l0 += values[s];
            l1 += values[s + 1];
            l2 += values[s + 2];
            l3 += values[s + 3];
            l4 += values[s + 4];
            l5 += values[s + 5];
            l6 += values[s + 6];
            l7 += values[s + 7];
        }
        float sum = ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7));
        for (; s < count; s++) {
            sum += values[s];
        }
        return sum;
    }
}
