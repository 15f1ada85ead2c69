package org.starflink.engine.backend;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.starflink.engine.testing.RandomModels;

/** The few-row dense ops: every row's numbers are its own, whatever rows share the call, and they are right. */
class FewRowDenseTest {

    /**
     * Through the tails of the loop nest: an input size that is not a multiple of 4 and an output wider than one pass
     * over the weights (4096 columns) and not a multiple of it.
     */
    @Test
    void aRowMultipliedAloneOrStackedGetsTheSameBitsAndTheFloat64Product() {
        Random random = new Random(3);
        int in = 37;
        int out = 4100;
        int rows = 7;
        float[] x = RandomModels.vector(random, rows * in);
        float[] linear = RandomModels.vector(random, out * in); // [out, in], as a checkpoint holds it
        float[][] w = FewRowDense.inputRows(in, linear);
        float[] stacked = FewRowDense.multiply(x, rows, in, w, out);
        for (int r = 0; r < rows; r++) {
            float[] alone = FewRowDense.multiply(Arrays.copyOfRange(x, r * in, (r + 1) * in), 1, in, w, out);
            assertArrayEquals(alone, Arrays.copyOfRange(stacked, r * out, (r + 1) * out), "row " + r);
            for (int j = 0; j < out; j++) {
                double exact = 0;
                double magnitude = 0;
                for (int i = 0; i < in; i++) {
                    exact += (double) x[r * in + i] * linear[j * in + i];
                    magnitude += Math.abs((double) x[r * in + i] * linear[j * in + i]);
                }
                // float32 sums of 37 products: within a few units in the last place of their magnitude
                assertTrue(Math.abs(alone[j] - exact) <= 1e-5 * magnitude, "row " + r + " column " + j);
            }
        }
    }

    @Test
    void rmsNormAndTheGateAreRowWiseAndMatchTheirDefinitions() {
        Random random = new Random(4);
        int dim = 10;
        float[] x = RandomModels.vector(random, 3 * dim);
        float[] weight = RandomModels.vector(random, dim);
        float[] normed = FewRowDense.rmsNorm(x, 3, dim, weight, 1e-5f);
        for (int r = 0; r < 3; r++) {
            double squares = 0;
            for (int j = 0; j < dim; j++) {
                squares += (double) x[r * dim + j] * x[r * dim + j];
            }
            double scale = 1 / Math.sqrt(squares / dim + 1e-5);
            float[] alone = FewRowDense.rmsNorm(Arrays.copyOfRange(x, r * dim, (r + 1) * dim), 1, dim, weight, 1e-5f);
            assertArrayEquals(alone, Arrays.copyOfRange(normed, r * dim, (r + 1) * dim));
            for (int j = 0; j < dim; j++) {
                assertTrue(Math.abs(normed[r * dim + j] - x[r * dim + j] * scale * weight[j]) <= 1e-5);
            }
        }
        float[] gate = {-3f, 0f, 2f};
        float[] up = {2f, 5f, -1f};
        float[] gated = FewRowDense.gatedSilu(gate, up);
        for (int j = 0; j < gate.length; j++) {
            double silu = gate[j] / (1 + Math.exp(-gate[j]));
            assertTrue(Math.abs(gated[j] - silu * up[j]) <= 1e-6, "gate " + gate[j]);
        }
    }
}
