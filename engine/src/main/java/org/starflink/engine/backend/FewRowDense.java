package org.starflink.engine.backend;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The dense arithmetic of a decoder layer for a few rows, in plain Java, such that every row's result depends on
 * that row alone: a row computes the same bits whether it is multiplied alone or stacked with other questions'
 * rows (libtorch's product does not promise that; docs/design.md). That lets a query host stack its batch's decode
 * rows into one pass over each weight matrix (read once for all of them) without changing any question's numbers.
 *
 * <p>Every output element of {@link #multiply} sums its products in input order starting from 0, each product fused
 * into the sum ({@link Math#fma}, one rounding); the loop nest only decides how often a weight row is read:
 * once per call for all the rows, with the rows' partial outputs of one column range kept in cache. The innermost
 * loop runs over a contiguous slice of a weight row and of an output row, which the JIT vectorizes.
 */
public final class FewRowDense {
    /**
     * Output columns per pass over the weights: every row's slice of them (16 rows: 256 KiB) stays in the L2 cache
     * while the weight rows' slices stream through once.
     */
    private static final int COLUMNS_PER_PASS = 4096;

    /**
     * y = x W for x [rows, in] and W [in, out], given as one array per input row ({@code w[i]}: input i's weights
     * to every output). One array per row, like the outputs': the JIT vectorizes the innermost loop only when its
     * arrays are distinct objects (offsets into one flat array kept it scalar).
     *
     * @return y [rows, out]
     */
    public static float[] multiply(float[] x, int rows, int in, float[][] w, int out) {
        float[][] y = new float[rows][out];
        for (int from = 0; from < out; from += COLUMNS_PER_PASS) {
            int to = Math.min(out, from + COLUMNS_PER_PASS);
            int i = 0;
            for (; i + 4 <= in; i += 4) {
                for (int r = 0; r < rows; r++) {
                    int xr = r * in + i;
                    addProducts(y[r], x[xr], w[i], x[xr + 1], w[i + 1], x[xr + 2], w[i + 2], x[xr + 3], w[i + 3],
                            from, to);
                }
            }
            for (; i < in; i++) {
                for (int r = 0; r < rows; r++) {
                    addProducts(y[r], x[r * in + i], w[i], from, to);
                }
            }
        }
        float[] flat = new float[rows * out];
        for (int r = 0; r < rows; r++) {
            System.arraycopy(y[r], 0, flat, r * out, out);
        }
        return flat;
    }

    /**
     * y[j] = fma(a3, w3[j], fma(a2, w2[j], fma(a1, w1[j], fma(a0, w0[j], y[j])))) for j in [from, to): four products
     * added one at a time, each fused into the sum (one rounding), the ordered inner loop of this product. Eight
     * products per pass, faster in {@link StackedAttention}'s loop nest, is about 3x slower here: the JIT leaves this
     * call site's loop scalar (measured twice, on a Xeon and on a Zen 4, {@code bin/benchmark host-layer-vs}: the
     * files docs/figures/concurrency/host-layer-vs-*-eight-products-rejected-*).
     */
    static void addProducts(float[] y, float a0, float[] w0, float a1, float[] w1, float a2, float[] w2,
                                    float a3, float[] w3, int from, int to) {
        for (int j = from; j < to; j++) {
            y[j] = Math.fma(a3, w3[j], Math.fma(a2, w2[j], Math.fma(a1, w1[j], Math.fma(a0, w0[j], y[j]))));
        }
    }

    /** y[j] = fma(a, w[j], y[j]) for j in [from, to): one fused product (also {@link StackedAttention}'s tails). */
    static void addProducts(float[] y, float a, float[] w, int from, int to) {
        for (int j = from; j < to; j++) {
            y[j] = Math.fma(a, w[j], y[j]);
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

    /** The arrays one after another: several sets' rows stacked into one matrix (or biases into one vector). */
    public static float[] stack(List<float[]> parts) {
        int length = 0;
        for (float[] part : parts) {
            length += part.length;
        }
        float[] stacked = new float[length];
        int at = 0;
        for (float[] part : parts) {
            System.arraycopy(part, 0, stacked, at, part.length);
            at += part.length;
        }
        return stacked;
    }

    /** The sets' position ids one after another, as their rows are stacked. */
    public static int[] stackPositions(List<int[]> positions) {
        int rows = 0;
        for (int[] p : positions) {
            rows += p.length;
        }
        int[] stacked = new int[rows];
        int at = 0;
        for (int[] p : positions) {
            System.arraycopy(p, 0, stacked, at, p.length);
            at += p.length;
        }
        return stacked;
    }

    /**
     * The inverse of {@link #stack}: {@code stacked} [sum of rows, width] cut back into one [rows_i, width] array per
     * set ({@code stacked} itself for a single set).
     */
    public static List<float[]> unstack(float[] stacked, int[] rowsPerSet, int width) {
        if (rowsPerSet.length == 1) {
            return List.of(stacked);
        }
        List<float[]> sets = new ArrayList<>(rowsPerSet.length);
        int row = 0;
        for (int rows : rowsPerSet) {
            sets.add(Arrays.copyOfRange(stacked, row * width, (row + rows) * width));
            row += rows;
        }
        return sets;
    }

    /**
     * Linear weights [out_p, in] (a checkpoint's layout) of the same input, side by side as the [in, sum of out_p]
     * matrix {@link #multiply} reads: row i holds input i's weights to every output of every part, in part order.
     */
    public static float[][] inputRows(int in, float[]... parts) {
        int out = 0;
        for (float[] part : parts) {
            out += part.length / in;
        }
        float[][] rows = new float[in][out];
        int column = 0;
        for (float[] part : parts) {
            int partOut = part.length / in;
            for (int o = 0; o < partOut; o++) {
                for (int i = 0; i < in; i++) {
                    rows[i][column + o] = part[o * in + i];
                }
            }
            column += partOut;
        }
        return rows;
    }
}
