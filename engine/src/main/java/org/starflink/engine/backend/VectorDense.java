package org.starflink.engine.backend;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * {@link FewRowDense#multiply}'s product written with the Vector API, register-blocked as {@link VectorAttention}'s
 * loops are: a tile of 4 rows x 4 vectors of output columns (16 sums) stays in registers while the sum over all inputs
 * runs, each weight vector loaded once for the tile's 4 rows. Bit for bit {@link FewRowDense#scalarMultiply}'s
 * numbers: every output is the same chain of fused products in input order from 0 (asserted in
 * {@code FewRowDenseTest}). Loaded only where {@link VectorApi#PRESENT}.
 */
final class VectorDense {
    private static final VectorSpecies<Float> SPECIES = FloatVector.SPECIES_PREFERRED;
    private static final int LANES = SPECIES.length();
    private static final int ROW_TILE = 4;

    private VectorDense() {
    }

    /**
     * y[r][j] = sum over i in [0, in) in order of x[r * in + i] * w[i][j], fused, from 0.
     *
     * @param x [rows, in]
     * @param w [in][out]
     * @param y [rows][out], written
     */
    static void multiply(float[] x, int rows, int in, float[][] w, int out, float[][] y) {
        int wideEnd = out - out % (4 * LANES);
        int vectorEnd = out - out % LANES;
        for (int j = 0; j < wideEnd; j += 4 * LANES) {
            int r = 0;
            for (; r + ROW_TILE <= rows; r += ROW_TILE) {
                fourRowsWide(x, r, in, w, j, y);
            }
            for (; r < rows; r++) {
                oneRowWide(x, r, in, w, j, y[r]);
            }
        }
        for (int j = wideEnd; j < vectorEnd; j += LANES) {
            for (int r = 0; r < rows; r++) {
                FloatVector sum = FloatVector.zero(SPECIES);
                for (int i = 0; i < in; i++) {
                    FloatVector b = FloatVector.broadcast(SPECIES, x[r * in + i]);
                    sum = FloatVector.fromArray(SPECIES, w[i], j).fma(b, sum);
                }
                sum.intoArray(y[r], j);
            }
        }
        for (int j = vectorEnd; j < out; j++) {
            for (int r = 0; r < rows; r++) {
                float sum = 0f;
                for (int i = 0; i < in; i++) {
                    sum = Math.fma(x[r * in + i], w[i][j], sum);
                }
                y[r][j] = sum;
            }
        }
    }

    /** Columns [at, at + 4 LANES) of rows [r, r + 4). */
    private static void fourRowsWide(float[] x, int r, int in, float[][] w, int at, float[][] y) {
        FloatVector a00 = FloatVector.zero(SPECIES), a01 = a00, a02 = a00, a03 = a00;
        FloatVector a10 = a00, a11 = a00, a12 = a00, a13 = a00;
        FloatVector a20 = a00, a21 = a00, a22 = a00, a23 = a00;
        FloatVector a30 = a00, a31 = a00, a32 = a00, a33 = a00;
        int x0 = r * in, x1 = x0 + in, x2 = x1 + in, x3 = x2 + in;
        for (int i = 0; i < in; i++) {
            float[] wi = w[i];
            FloatVector w0 = FloatVector.fromArray(SPECIES, wi, at);
            FloatVector w1 = FloatVector.fromArray(SPECIES, wi, at + LANES);
            FloatVector w2 = FloatVector.fromArray(SPECIES, wi, at + 2 * LANES);
            FloatVector w3 = FloatVector.fromArray(SPECIES, wi, at + 3 * LANES);
            FloatVector b = FloatVector.broadcast(SPECIES, x[x0 + i]);
            a00 = w0.fma(b, a00);
            a01 = w1.fma(b, a01);
            a02 = w2.fma(b, a02);
            a03 = w3.fma(b, a03);
            b = FloatVector.broadcast(SPECIES, x[x1 + i]);
            a10 = w0.fma(b, a10);
            a11 = w1.fma(b, a11);
            a12 = w2.fma(b, a12);
            a13 = w3.fma(b, a13);
            b = FloatVector.broadcast(SPECIES, x[x2 + i]);
            a20 = w0.fma(b, a20);
            a21 = w1.fma(b, a21);
            a22 = w2.fma(b, a22);
            a23 = w3.fma(b, a23);
            b = FloatVector.broadcast(SPECIES, x[x3 + i]);
            a30 = w0.fma(b, a30);
            a31 = w1.fma(b, a31);
            a32 = w2.fma(b, a32);
            a33 = w3.fma(b, a33);
        }
        // stored here, not in a helper taking the vectors: one the JIT does not inline boxes them
        float[] row = y[r];
        a00.intoArray(row, at);
        a01.intoArray(row, at + LANES);
        a02.intoArray(row, at + 2 * LANES);
        a03.intoArray(row, at + 3 * LANES);
        row = y[r + 1];
        a10.intoArray(row, at);
        a11.intoArray(row, at + LANES);
        a12.intoArray(row, at + 2 * LANES);
        a13.intoArray(row, at + 3 * LANES);
        row = y[r + 2];
        a20.intoArray(row, at);
        a21.intoArray(row, at + LANES);
        a22.intoArray(row, at + 2 * LANES);
        a23.intoArray(row, at + 3 * LANES);
        row = y[r + 3];
        a30.intoArray(row, at);
        a31.intoArray(row, at + LANES);
        a32.intoArray(row, at + 2 * LANES);
        a33.intoArray(row, at + 3 * LANES);
    }

    /** Columns [at, at + 4 LANES) of row r, into {@code row}. */
    private static void oneRowWide(float[] x, int r, int in, float[][] w, int at, float[] row) {
        FloatVector a0 = FloatVector.zero(SPECIES), a1 = a0, a2 = a0, a3 = a0;
        int x0 = r * in;
        for (int i = 0; i < in; i++) {
            float[] wi = w[i];
            FloatVector b = FloatVector.broadcast(SPECIES, x[x0 + i]);
            a0 = FloatVector.fromArray(SPECIES, wi, at).fma(b, a0);
            a1 = FloatVector.fromArray(SPECIES, wi, at + LANES).fma(b, a1);
            a2 = FloatVector.fromArray(SPECIES, wi, at + 2 * LANES).fma(b, a2);
            a3 = FloatVector.fromArray(SPECIES, wi, at + 3 * LANES).fma(b, a3);
        }
        a0.intoArray(row, at);
        a1.intoArray(row, at + LANES);
        a2.intoArray(row, at + 2 * LANES);
        a3.intoArray(row, at + 3 * LANES);
    }
}
