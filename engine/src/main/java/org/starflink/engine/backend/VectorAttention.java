package org.starflink.engine.backend;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * {@link StackedAttention}'s value loop written with the Vector API (JDK 17's incubating {@code jdk.incubator.vector}):
 * register-blocked, a tile of 4 pairs x 4 vectors of a value row's outputs stays in vector registers while the whole
 * sum over the keys runs, and each value vector loaded serves four pairs; the JIT's auto-vectorized loop
 * ({@link StackedAttention#scalarWeightedValues}) loads and stores every partial sum once per eight products, which
 * bounds it by memory operations, not by the multiply-adds. The score loop and the softmax stay in the loops the JIT
 * vectorizes: written this way they were slower (docs/performance.md, session 15).
 *
 * <p>Bit for bit the scalar loop's numbers: every lane runs the same float operations in the same order (a lane of
 * {@link FloatVector#fma} is {@link Math#fma} of its lanes), each sum from 0 in key order; only which outputs
 * advance together differs. {@code CpuKernelsTest} asserts it, with tails in every dimension. A helper that takes
 * vectors as arguments must be one the JIT inlines: one that it does not (too big to inline) gets its vectors boxed,
 * which made this loop slower than the scalar one.
 *
 * <p>Loaded only where the JVM resolves the module ({@link VectorApi#PRESENT}): touching this class without
 * it fails with {@link NoClassDefFoundError}.
 */
final class VectorAttention {
    private static final VectorSpecies<Float> SPECIES = FloatVector.SPECIES_PREFERRED;
    private static final int LANES = SPECIES.length();
    /** Pairs per tile; a tile with fewer real pairs repeats its last one and stores only the real ones. */
    private static final int PAIR_TILE = 4;

    private VectorAttention() {
    }

    static int lanes() {
        return LANES;
    }

    /**
     * sums[pair][i] = sum over s in [0, keyCount) in order of weights[pair][s] * values[s][i], for i in [0, hd),
     * fused, from 0. Tiles of 4 pairs x 4 vectors of the head dimension (16 sums in registers), then 4 pairs x 1
     * vector; dimensions past the last full vector are summed one at a time, in the same order.
     *
     * @param values [>= keyCount][hd]
     */
    static void weightedValues(float[][] weights, int pairs, float[][] values, int hd, int keyCount, float[][] sums) {
        int wideEnd = hd - hd % (4 * LANES);
        int vectorEnd = hd - hd % LANES;
        for (int first = 0; first < pairs; first += PAIR_TILE) {
            float[] p0 = weights[first];
            float[] p1 = weights[Math.min(first + 1, pairs - 1)];
            float[] p2 = weights[Math.min(first + 2, pairs - 1)];
            float[] p3 = weights[Math.min(first + 3, pairs - 1)];
            int real = Math.min(PAIR_TILE, pairs - first);
            for (int i = 0; i < wideEnd; i += 4 * LANES) {
                weightedValuesWide(p0, p1, p2, p3, values, keyCount, i, sums, first, real);
            }
            for (int i = wideEnd; i < vectorEnd; i += LANES) {
                weightedValuesNarrow(p0, p1, p2, p3, values, keyCount, i, sums, first, real);
            }
            for (int i = vectorEnd; i < hd; i++) {
                for (int pair = first; pair < first + real; pair++) {
                    float[] p = weights[pair];
                    float sum = 0f;
                    for (int s = 0; s < keyCount; s++) {
                        sum = Math.fma(p[s], values[s][i], sum);
                    }
                    sums[pair][i] = sum;
                }
            }
        }
    }

    /** Columns [at, at + 4 LANES) of the tile's first {@code real} pairs. */
    private static void weightedValuesWide(float[] p0, float[] p1, float[] p2, float[] p3, float[][] values,
                                           int keyCount, int at, float[][] sums, int first, int real) {
        FloatVector a00 = FloatVector.zero(SPECIES), a01 = a00, a02 = a00, a03 = a00;
        FloatVector a10 = a00, a11 = a00, a12 = a00, a13 = a00;
        FloatVector a20 = a00, a21 = a00, a22 = a00, a23 = a00;
        FloatVector a30 = a00, a31 = a00, a32 = a00, a33 = a00;
        for (int s = 0; s < keyCount; s++) {
            float[] v = values[s];
            FloatVector v0 = FloatVector.fromArray(SPECIES, v, at);
            FloatVector v1 = FloatVector.fromArray(SPECIES, v, at + LANES);
            FloatVector v2 = FloatVector.fromArray(SPECIES, v, at + 2 * LANES);
            FloatVector v3 = FloatVector.fromArray(SPECIES, v, at + 3 * LANES);
            FloatVector w = FloatVector.broadcast(SPECIES, p0[s]);
            a00 = v0.fma(w, a00);
            a01 = v1.fma(w, a01);
            a02 = v2.fma(w, a02);
            a03 = v3.fma(w, a03);
            w = FloatVector.broadcast(SPECIES, p1[s]);
            a10 = v0.fma(w, a10);
            a11 = v1.fma(w, a11);
            a12 = v2.fma(w, a12);
            a13 = v3.fma(w, a13);
            w = FloatVector.broadcast(SPECIES, p2[s]);
            a20 = v0.fma(w, a20);
            a21 = v1.fma(w, a21);
            a22 = v2.fma(w, a22);
            a23 = v3.fma(w, a23);
            w = FloatVector.broadcast(SPECIES, p3[s]);
            a30 = v0.fma(w, a30);
            a31 = v1.fma(w, a31);
            a32 = v2.fma(w, a32);
            a33 = v3.fma(w, a33);
        }
        // stored here, not in a helper taking the vectors: a call that the JIT does not inline boxes its vectors
        float[] y = sums[first];
        a00.intoArray(y, at);
        a01.intoArray(y, at + LANES);
        a02.intoArray(y, at + 2 * LANES);
        a03.intoArray(y, at + 3 * LANES);
        if (real > 1) {
            y = sums[first + 1];
            a10.intoArray(y, at);
            a11.intoArray(y, at + LANES);
            a12.intoArray(y, at + 2 * LANES);
            a13.intoArray(y, at + 3 * LANES);
        }
        if (real > 2) {
            y = sums[first + 2];
            a20.intoArray(y, at);
            a21.intoArray(y, at + LANES);
            a22.intoArray(y, at + 2 * LANES);
            a23.intoArray(y, at + 3 * LANES);
        }
        if (real > 3) {
            y = sums[first + 3];
            a30.intoArray(y, at);
            a31.intoArray(y, at + LANES);
            a32.intoArray(y, at + 2 * LANES);
            a33.intoArray(y, at + 3 * LANES);
        }
    }

    /** Columns [at, at + LANES) of the tile's first {@code real} pairs. */
    private static void weightedValuesNarrow(float[] p0, float[] p1, float[] p2, float[] p3, float[][] values,
                                             int keyCount, int at, float[][] sums, int first, int real) {
        FloatVector a0 = FloatVector.zero(SPECIES), a1 = a0, a2 = a0, a3 = a0;
        for (int s = 0; s < keyCount; s++) {
            FloatVector v = FloatVector.fromArray(SPECIES, values[s], at);
            a0 = v.fma(FloatVector.broadcast(SPECIES, p0[s]), a0);
            a1 = v.fma(FloatVector.broadcast(SPECIES, p1[s]), a1);
            a2 = v.fma(FloatVector.broadcast(SPECIES, p2[s]), a2);
            a3 = v.fma(FloatVector.broadcast(SPECIES, p3[s]), a3);
        }
        a0.intoArray(sums[first], at);
        if (real > 1) {
            a1.intoArray(sums[first + 1], at);
        }
        if (real > 2) {
            a2.intoArray(sums[first + 2], at);
        }
        if (real > 3) {
            a3.intoArray(sums[first + 3], at);
        }
    }
}
