package org.starflink.engine.backend;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The attention's softmax weights: within one ulp of the exact exp, and their sum in the documented order. */
class SoftmaxWeightsTest {
    @Test
    void eachWeightIsWithinOneUlpOfTheExactExpOverTheNormalRange() {
        // every 1009th float from -0 down to where e^x leaves the normal range (about 1.1 million), as gaps below a
        // row maximum of 0, weighed in rows of 4096
        float[] gaps = new float[4096];
        double worst = 0;
        float worstAt = 0;
        long checked = 0;
        long equalToMathExp = 0;
        int bits = Float.floatToRawIntBits(-0f);
        boolean done = false;
        while (!done) {
            int n = 0;
            while (n < gaps.length && !(done = Float.intBitsToFloat(bits) < -87.33f)) {
                gaps[n++] = Float.intBitsToFloat(bits);
                bits += 1009;
            }
            float[] weights = Arrays.copyOf(gaps, n);
            SoftmaxWeights.weigh(weights, n, 0f, new float[n]);
            for (int i = 0; i < n; i++) {
                double exact = Math.exp(gaps[i]);
                double error = Math.abs(weights[i] - exact) / Math.ulp((float) exact);
                if (error > worst) {
                    worst = error;
                    worstAt = gaps[i];
                }
                equalToMathExp += weights[i] == (float) exact ? 1 : 0;
            }
            checked += n;
        }
        System.out.printf("SoftmaxWeightsTest: %d gaps, worst %.3f ulp at %g, %.2f%% equal to the rounded Math.exp%n",
                checked, worst, worstAt, 100.0 * equalToMathExp / checked);
        assertTrue(worst <= 1.0, "error " + worst + " ulp at " + worstAt);
    }

    @Test
    void weightsAtTheEdges() {
        assertEquals(1f, weight(0f));
        assertEquals(1f, weight(-0f));
        assertEquals(0f, weight(Float.NEGATIVE_INFINITY)); // a masked key
        assertEquals(0f, weight(-90f)); // below 2^-126.5: flushed
        assertTrue(Float.isNaN(weight(Float.NaN)));
    }

    @Test
    void weighGivesEachKeyExpOfItsGapAndSumsInEightLanesThenTheTail() {
        Random random = new Random(3);
        for (int count : new int[] {1, 7, 8, 9, 23, 1024, 1031}) {
            float[] scores = new float[count];
            float max = Float.NEGATIVE_INFINITY;
            for (int s = 0; s < count; s++) {
                scores[s] = random.nextInt(10) == 0 ? Float.NEGATIVE_INFINITY : (float) random.nextGaussian() * 5;
                max = Math.max(max, scores[s]);
            }
            if (max == Float.NEGATIVE_INFINITY) {
                scores[0] = max = 0f;
            }
            float[] expected = new float[count];
            for (int s = 0; s < count; s++) {
                expected[s] = weight(scores[s] - max); // a key's weight does not depend on the others
            }
            float[] lanes = new float[8];
            int full = count / 8 * 8;
            for (int s = 0; s < full; s++) {
                lanes[s % 8] += expected[s];
            }
            float sum = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3]))
                    + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
            for (int s = full; s < count; s++) {
                sum += expected[s];
            }
            float[] weights = scores.clone();
            float total = SoftmaxWeights.weigh(weights, count, max, new float[count]);
            for (int s = 0; s < count; s++) {
                assertEquals(Float.floatToRawIntBits(expected[s]), Float.floatToRawIntBits(weights[s]),
                        count + " keys, key " + s);
            }
            assertEquals(Float.floatToRawIntBits(sum), Float.floatToRawIntBits(total), count + " keys");
            double exactSum = 0;
            for (float score : scores) {
                exactSum += Math.exp((double) score - max);
            }
            assertEquals(exactSum, total, exactSum * 1e-6, count + " keys");
        }
    }

    /** The weight of one key {@code gap} below its row's maximum, weighed alone. */
    private static float weight(float gap) {
        float[] row = {gap};
        SoftmaxWeights.weigh(row, 1, 0f, new float[1]);
        return row[0];
    }
}
