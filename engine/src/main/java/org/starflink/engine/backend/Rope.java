package org.starflink.engine.backend;

import org.starflink.engine.model.ModelConfig;
import org.starflink.engine.model.RopeStyle;

/**
 * Rotary position embedding at arbitrary position ids. Star Attention encodes blocks at their GLOBAL positions
 * and the anchor at 0..a-1, so positions are never assumed to be contiguous.
 *
 * <p>Angles are computed in float64 (p * inverse frequency) and rounded once: at position 16K the float32 product
 * would already be off by about 1e-3 rad.
 */
public final class Rope {
    private final int headDim;
    private final RopeStyle style;
    /** [headDim / 2] inverse frequency of each rotary pair, after llama3 scaling. */
    private final double[] inverseFrequencies;

    public Rope(ModelConfig config) {
        this.headDim = config.headDim();
        this.style = config.ropeStyle();
        this.inverseFrequencies = new double[headDim / 2];
        for (int i = 0; i < headDim / 2; i++) {
            double inverseFrequency = 1.0 / Math.pow(config.ropeTheta(), (2.0 * i) / headDim);
            inverseFrequencies[i] = config.ropeScaling() == null
                    ? inverseFrequency
                    : config.ropeScaling().scale(inverseFrequency);
        }
    }

    /** [headDim / 2] the inverse frequency of each rotary pair, llama3 scaling applied (for device kernels). */
    public double[] inverseFrequencies() {
        return inverseFrequencies.clone();
    }

    /**
     * Rotates every head of every row in place.
     *
     * @param x         [rows, heads, headDim]
     * @param heads     number of heads per row
     * @param positions [rows] position id of each row
     */
    public void apply(float[] x, int heads, int[] positions) {
        int half = headDim / 2;
        float[] cos = new float[half];
        float[] sin = new float[half];
        for (int row = 0; row < positions.length; row++) {
            for (int i = 0; i < half; i++) {
                double angle = positions[row] * inverseFrequencies[i];
                cos[i] = (float) Math.cos(angle);
                sin[i] = (float) Math.sin(angle);
            }
            for (int h = 0; h < heads; h++) {
                int base = (row * heads + h) * headDim;
                for (int i = 0; i < half; i++) {
                    // pair (a, b) rotates by the angle of pair index i
                    int a = style == RopeStyle.INTERLEAVED ? base + 2 * i : base + i;
                    int b = style == RopeStyle.INTERLEAVED ? a + 1 : a + half;
                    float x0 = x[a];
                    float x1 = x[b];
                    x[a] = x0 * cos[i] - x1 * sin[i];
                    x[b] = x0 * sin[i] + x1 * cos[i];
                }
            }
        }
    }
}
