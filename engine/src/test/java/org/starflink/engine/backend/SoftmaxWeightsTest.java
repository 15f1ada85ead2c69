package org.starflink.engine.backend;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Test;

/** The attention's softmax weights: an exp within one ulp, weights equal to it, and a sum in the documented order. */
class SoftmaxWeightsTest {
    @Test
    void expIsWithinOneUlpOfTheExactValueOverTheNormalRange() {
        double worst = 0;
        float worstAt = 0;
        // every 1009th float from -0 down to where e^x leaves the normal range: about 1.6 million of them
        for (int bits = Float.floatToRawIntBits(-0f); ; bits += 1009) {
            float x = Float.intBitsToFloat(bits);
            if (x < -87.33f) {
                break;
            }
            double exact = Math.exp(x);
            double error = Math.abs(SoftmaxWeights.exp(x) - exact) / Math.ulp((float) exact);
            if (error > worst) {
                worst = error;
                worstAt = x;
            }
        }
        assertTrue(worst <= 1.0, "error " + worst + " ulp at " + worstAt);
        for (float x : new float[] {0.5f, 1f, 10f, 80f}) { // above 0 too, as documented
            double exact = Math.exp(x);
            assertTrue(Math.abs(SoftmaxWeights.exp(x) - exact) <= Math.ulp((float) exact), "at " + x);
        }
    }

    @Test
    void expAtTheEdges() {
        assertEquals(1f, SoftmaxWeights.exp(0f));
        assertEquals(1f, SoftmaxWeights.exp(-0f));
        assertEquals(0f, SoftmaxWeights.exp(Float.NEGATIVE_INFINITY)); // a masked key
        assertEquals(0f, SoftmaxWeights.exp(-90f)); // below 2^-126.5: flushed
        assertTrue(Float.isNaN(SoftmaxWeights.exp(Float.NaN)));
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
                expected[s] = SoftmaxWeights.exp(scores[s] - max);
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
}
