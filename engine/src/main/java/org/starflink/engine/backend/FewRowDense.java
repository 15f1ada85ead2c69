package org.starflink.engine.backend;

/**
 * The dense arithmetic of a decoder layer for a few rows, in plain Java, such that every row's result depends on
 * that row alone: a row computes the same bits whether it is multiplied alone or stacked with other questions'
 * rows (libtorch's product does not promise that; docs/design.md). That lets a query host stack its batch's decode
 * rows into one pass over each weight matrix (read once for all of them) without changing any question's numbers.
 *
 * <p>Every output element of {@link #multiply} sums its products in input order starting from 0, one rounding per
 * product and per addition (Java does not fuse them); the loop nest only decides how often a weight row is read:
 * once per call for all the rows, with the rows' partial outputs of one column tile kept in cache. The innermost
 * loop runs over one contiguous tile of a weight row and of an output row, which the JIT vectorizes.
 */
public final class FewRowDense {
    /** Output columns per tile: a tile of every row's outputs (rows x TILE floats) stays in the L1/L2 cache. */
    private static final int TILE = 512;

    private FewRowDense() {
    }

    /**
     * y = x W for x [rows, in] and W [in, out] (row-major: row i holds input i's weights to every output).
     *
     * @return y [rows, out]
     */
    public static float[] multiply(float[] x, int rows, int in, float[] w, int out) {
        float[] y = new float[rows * out];
        for (int from = 0; from < out; from += TILE) {
            int to = Math.min(out, from + TILE);
            int i = 0;
            for (; i + 4 <= in; i += 4) {
                int w0 = i * out;
                int w1 = w0 + out;
                int w2 = w1 + out;
                int w3 = w2 + out;
                for (int r = 0; r < rows; r++) {
                    int xr = r * in + i;
                    addProducts(y, r * out, x[xr], x[xr + 1], x[xr + 2], x[xr + 3], w, w0, w1, w2, w3, from, to);
                }
            }
            for (; i < in; i++) {
                for (int r = 0; r < rows; r++) {
                    float a = x[r * in + i];
                    int yr = r * out;
                    int wi = i * out;
                    for (int j = from; j < to; j++) {
                        y[yr + j] += a * w[wi + j];
                    }
                }
            }
        }
        return y;
    }

    /** y[yr + j] += a0 w[w0 + j] + ... + a3 w[w3 + j], added one product at a time, for j in [from, to). */
    private static void addProducts(float[] y, int yr, float a0, float a1, float a2, float a3, float[] w, int w0,
                                    int w1, int w2, int w3, int from, int to) {
        for (int j = from; j < to; j++) {
            y[yr + j] = (((y[yr + j] + a0 * w[w0 + j]) + a1 * w[w1 + j]) + a2 * w[w2 + j]) + a3 * w[w3 + j];
        }
    }

    /** x / sqrt(mean(x^2) + eps) * weight, per row of x [rows, dim]; the mean sums in order, in float. */
    public static float[] rmsNorm(float[] x, int rows, int dim, float[] weight, float eps) {
        float[] y = new float[rows * dim];
        for (int r = 0; r < rows; r++) {
            int base = r * dim;
            float squares = 0f;
            for (int j = 0; j < dim; j++) {
                squares += x[base + j] * x[base + j];
            }
            float scale = (float) (1.0 / Math.sqrt(squares / dim + eps));
            for (int j = 0; j < dim; j++) {
                y[base + j] = x[base + j] * scale * weight[j];
            }
        }
        return y;
    }

    /** SwiGLU's gate: silu(gate) * up = gate * sigmoid(gate) * up, elementwise. */
    public static float[] gatedSilu(float[] gate, float[] up) {
        float[] y = new float[gate.length];
        for (int j = 0; j < y.length; j++) {
            float g = gate[j];
            y[j] = g * (float) (1.0 / (1.0 + Math.exp(-g))) * up[j];
        }
        return y;
    }

    /** x + y, elementwise (a new array). */
    public static float[] add(float[] x, float[] y) {
        float[] sum = new float[x.length];
        for (int j = 0; j < sum.length; j++) {
            sum[j] = x[j] + y[j];
        }
        return sum;
    }

    /** w [out, in] (a checkpoint's Linear layout) transposed into [in, out], the layout {@link #multiply} reads. */
    public static float[] transpose(float[] w, int out, int in) {
        float[] t = new float[w.length];
        for (int o = 0; o < out; o++) {
            for (int i = 0; i < in; i++) {
                t[i * out + o] = w[o * in + i];
            }
        }
        return t;
    }
}
