package org.starflink.engine.backend;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * {@link StackedAttention}'s steps written with the Vector API (JDK 17's incubating {@code jdk.incubator.vector}).
 * The two product loops are register-blocked: a tile of sums stays in vector registers while the whole sum runs, so
 * no partial sum is loaded or stored between its products, and each key or value vector loaded serves four pairs;
 * the JIT's auto-vectorized loops ({@link StackedAttention#scalarScaledScores}) load and store the sums once per eight
 * products, which bounds them by memory operations, not by the multiply-adds. The softmax's weights are
 * {@link SoftmaxWeights}' operations, lane by lane, in one pass.
 *
 * <p>Bit for bit the scalar loops' numbers: every lane runs the same float operations in the same order (a lane of
 * {@link FloatVector#fma} is {@link Math#fma} of its lanes; a max is the same whatever the order), each sum from 0
 * in the same order; only which outputs advance together differs. {@code CpuKernelsTest} asserts it, with tails in
 * every dimension. A helper that takes vectors as arguments must be one the JIT inlines: one that it does not
 * (too big to inline) gets its vectors boxed, which made the value loop slower than the scalar one.
 *
 * <p>Loaded only where the JVM resolves the module ({@link VectorApi#PRESENT}): touching this class without
 * it fails with {@link NoClassDefFoundError}.
 */
final class VectorAttention {
    private static final VectorSpecies<Float> SPECIES = FloatVector.SPECIES_PREFERRED;
    /** {@link SoftmaxWeights}' sum runs in eight lanes (key s into lane s mod 8): one 8-lane vector of sums. */
    private static final VectorSpecies<Float> EIGHT = FloatVector.SPECIES_256;
    private static final int LANES = SPECIES.length();
    /** Pairs per tile; a tile with fewer real pairs repeats its last one and stores only the real ones. */
    private static final int PAIR_TILE = 4;

    private VectorAttention() {
    }

    static int lanes() {
        return LANES;
    }

    /**
     * scores[pair][s] = (sum over i in [0, hd) in order of q[qBase[pair] + i] * keysT[i][s]) * scale, for s in
     * [0, keyCount), each sum fused and from 0, and max[pair] = the largest of them. Tiles of 4 pairs x 2 vectors of
     * keys (8 sums in registers); keys past the last full tile are summed one at a time, in the same order.
     *
     * @param keysT [hd][>= keyCount]
     */
    static void scaledScores(float[] q, int[] qBase, int pairs, float[][] keysT, int hd, int keyCount, float scale,
                             float[][] scores, float[] max) {
        java.util.Arrays.fill(max, 0, pairs, Float.NEGATIVE_INFINITY);
        int tileKeys = 2 * LANES;
        int vectorKeys = keyCount - keyCount % tileKeys;
        for (int s = 0; s < vectorKeys; s += tileKeys) {
            for (int first = 0; first < pairs; first += PAIR_TILE) {
                int b0 = qBase[first];
                int b1 = qBase[Math.min(first + 1, pairs - 1)];
                int b2 = qBase[Math.min(first + 2, pairs - 1)];
                int b3 = qBase[Math.min(first + 3, pairs - 1)];
                FloatVector s00 = FloatVector.zero(SPECIES), s01 = s00, s10 = s00, s11 = s00;
                FloatVector s20 = s00, s21 = s00, s30 = s00, s31 = s00;
                for (int i = 0; i < hd; i++) {
                    float[] k = keysT[i];
                    FloatVector k0 = FloatVector.fromArray(SPECIES, k, s);
                    FloatVector k1 = FloatVector.fromArray(SPECIES, k, s + LANES);
                    FloatVector q0 = FloatVector.broadcast(SPECIES, q[b0 + i]);
                    FloatVector q1 = FloatVector.broadcast(SPECIES, q[b1 + i]);
                    FloatVector q2 = FloatVector.broadcast(SPECIES, q[b2 + i]);
                    FloatVector q3 = FloatVector.broadcast(SPECIES, q[b3 + i]);
                    s00 = k0.fma(q0, s00);
                    s01 = k1.fma(q0, s01);
                    s10 = k0.fma(q1, s10);
                    s11 = k1.fma(q1, s11);
                    s20 = k0.fma(q2, s20);
                    s21 = k1.fma(q2, s21);
                    s30 = k0.fma(q3, s30);
                    s31 = k1.fma(q3, s31);
                }
                // stored here, not in a helper taking the vectors (see the class comment)
                s00 = s00.mul(scale);
                s01 = s01.mul(scale);
                s00.intoArray(scores[first], s);
                s01.intoArray(scores[first], s + LANES);
                max[first] = Math.max(max[first], s00.max(s01).reduceLanes(VectorOperators.MAX));
                if (first + 1 < pairs) {
                    s10 = s10.mul(scale);
                    s11 = s11.mul(scale);
                    s10.intoArray(scores[first + 1], s);
                    s11.intoArray(scores[first + 1], s + LANES);
                    max[first + 1] = Math.max(max[first + 1], s10.max(s11).reduceLanes(VectorOperators.MAX));
                }
                if (first + 2 < pairs) {
                    s20 = s20.mul(scale);
                    s21 = s21.mul(scale);
                    s20.intoArray(scores[first + 2], s);
                    s21.intoArray(scores[first + 2], s + LANES);
                    max[first + 2] = Math.max(max[first + 2], s20.max(s21).reduceLanes(VectorOperators.MAX));
                }
                if (first + 3 < pairs) {
                    s30 = s30.mul(scale);
                    s31 = s31.mul(scale);
                    s30.intoArray(scores[first + 3], s);
                    s31.intoArray(scores[first + 3], s + LANES);
                    max[first + 3] = Math.max(max[first + 3], s30.max(s31).reduceLanes(VectorOperators.MAX));
                }
            }
        }
        for (int s = vectorKeys; s < keyCount; s++) {
            for (int pair = 0; pair < pairs; pair++) {
                float sum = 0f;
                for (int i = 0; i < hd; i++) {
                    sum = Math.fma(q[qBase[pair] + i], keysT[i][s], sum);
                }
                scores[pair][s] = sum * scale;
                max[pair] = Math.max(max[pair], scores[pair][s]);
            }
        }
    }

    /**
     * {@link SoftmaxWeights#weigh}, lane by lane: {@code scores[s] = exp(scores[s] - max)} for s in [0, count), and
     * their sum in its eight lanes. The same operations in the same order on every lane, so the same bits.
     */
    static float weigh(float[] scores, int count, float max) {
        int vectorEnd = count - count % LANES;
        for (int s = 0; s < vectorEnd; s += LANES) {
            FloatVector x = FloatVector.fromArray(SPECIES, scores, s).sub(max).max(SoftmaxWeights.LOWEST);
            FloatVector shifted = x.mul(SoftmaxWeights.LOG2_E).add(SoftmaxWeights.ROUNDER);
            FloatVector n = shifted.sub(SoftmaxWeights.ROUNDER);
            FloatVector r = x.sub(n.mul(SoftmaxWeights.LN2_HIGH)).sub(n.mul(SoftmaxWeights.LN2_LOW));
            FloatVector p = r.mul(SoftmaxWeights.P0).add(SoftmaxWeights.P1);
            p = p.mul(r).add(SoftmaxWeights.P2);
            p = p.mul(r).add(SoftmaxWeights.P3);
            p = p.mul(r).add(SoftmaxWeights.P4);
            p = p.mul(r).add(SoftmaxWeights.P5);
            FloatVector reduced = p.mul(r.mul(r)).add(r).add(1f);
            IntVector biased = ((IntVector) shifted.viewAsIntegralLanes()).sub(SoftmaxWeights.ROUNDER_BITS).add(127);
            FloatVector powerOfTwo = (FloatVector) biased.max(0).lanewise(VectorOperators.LSHL, 23)
                    .viewAsFloatingLanes();
            reduced.mul(powerOfTwo).intoArray(scores, s);
        }
        for (int s = vectorEnd; s < count; s++) {
            scores[s] = SoftmaxWeights.weight(scores[s], max);
        }
        int laneEnd = count - count % 8;
        FloatVector lanes = FloatVector.zero(EIGHT);
        for (int s = 0; s < laneEnd; s += 8) {
            lanes = lanes.add(FloatVector.fromArray(EIGHT, scores, s));
        }
        float sum = ((lanes.lane(0) + lanes.lane(1)) + (lanes.lane(2) + lanes.lane(3)))
                + ((lanes.lane(4) + lanes.lane(5)) + (lanes.lane(6) + lanes.lane(7)));
        for (int s = laneEnd; s < count; s++) {
            sum += scores[s];
        }
        return sum;
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
