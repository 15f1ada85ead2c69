package org.starflink.engine.backend;

import java.util.Arrays;

/**
 * The few-row attention of many query rows over one KV head at once: every (row, query head) pair that reads the
 * head, e.g. a query host's batch of decode rows at a context block times the head's query group. Bit for bit what
 * {@link CpuKernels}'s per-pair loop computes for each pair alone: every score sums its products in head-dimension
 * order starting from 0, every output sums its weighted values in key order starting from 0, each product fused into
 * its sum ({@link Math#fma}: one rounding, and one instruction where the CPU has FMA), and the softmax takes the same
 * max and the same weights and sum ({@link SoftmaxWeights}); only the loop nest differs. Here the innermost loops run
 * over one contiguous array each, with the same index on every array (a run of keys of one score row; one value
 * row), which the JIT turns into SIMD, and each key and value element is read once for all the pairs instead of once
 * per pair. The per-pair loop's inner loop is a sum over the head dimension, which Java's ordered float arithmetic
 * keeps scalar.
 *
 * <p>Measured on the project's model (hd 64, 3 query heads per KV head, 1024 keys, BF16 KV; 2-core AMD EPYC Zen 4,
 * Java 17; {@code bin/benchmark attention-kernel --model synth-14m --keys 1024 --rows 1,16 --blocks 64}): over a
 * {@linkplain HostKvCache#seal sealed} cache, which keeps the widened forms, 52-54 us for one row and 44-47 us each
 * for 16; over 64 sealed caches in turn (a block subtask's blocks, out of the CPU's caches) 151-166 and 51-56
 * (docs/figures/concurrency/attention-kernel-vs-72c548c-fma-softmax-*). On a 2-core Zen 3 (AVX2), with the value
 * loop through the Vector API ({@link VectorAttention}): 73-94 and 55-75 us, over 64 caches 161-201 and 64-86
 * (docs/figures/concurrency/attention-kernel-vs-dd54589-vector-api-value-loop-*). The per-pair loop of 4cbe055 took
 * about 500 us per row (Zen 4). Every key must be visible to every pair (a remote block, a decode step):
 * {@link CpuKernels} keeps the per-pair loop for masked cases.
 */
final class StackedAttention {
    /** Keys per pass of the score loop: bounds the slice of the transposed keys and scores the pairs revisit. */
    private static final int KEY_CHUNK = 256;

    private StackedAttention() {
    }

    /**
     * The pairs (row t, query head h) with t in [0, rows) and h in {@code [firstHead, firstHead + group)}, over KV head
     * {@code kvHead} of one layer; writes their rows of {@code output} [T, H, hd] and {@code lse} [T, H].
     *
     * @param q [T, H, hd]
     */
    static void attendHead(float[] q, int rows, int heads, int firstHead, int group, int hd, HostKvCache kv,
                           int layer, int kvHead, float scale, float[] output, float[] lse) {
        int keyCount = kv.length(layer);
        int pairs = rows * group;
        Scratch scratch = Scratch.get(keyCount, hd, pairs);
        float[][] keysT = kv.keyHeadTransposed(layer, kvHead, scratch.keysT); // [hd][S]
        float[][] values = kv.valueHeadRows(layer, kvHead, scratch.values); // [S][hd]
        float[][] scores = scratch.scores; // [pairs][S]
        float[][] sums = scratch.sums;     // [pairs][hd]: the unnormalized outputs
        int[] qBase = scratch.qBase;       // [pairs]: where the pair's query row starts in q (and output)
        for (int t = 0; t < rows; t++) {
            for (int g = 0; g < group; g++) {
                qBase[t * group + g] = (t * heads + firstHead + g) * hd;
            }
        }
        float[] max = scratch.max;
        float[] total = scratch.total;
        // scores[pair][s] = (sum over i in order of q[pair][i] * k[s][i]) * scale; max[pair] = their largest
        scaledScores(q, qBase, pairs, keysT, hd, keyCount, scale, scores, max);
        for (int pair = 0; pair < pairs; pair++) {
            float m = max[pair];
            // the score row now holds the weights
            total[pair] = m == Float.NEGATIVE_INFINITY ? 0f : SoftmaxWeights.weigh(scores[pair], keyCount, m,
                    scratch.shifts);
        }
        // sums[pair][i] = sum over s in order of p[pair][s] * v[s][i]
        if (VectorApi.PRESENT) {
            VectorAttention.weightedValues(scores, pairs, values, hd, keyCount, sums);
        } else {
            scalarWeightedValues(scores, pairs, values, hd, keyCount, sums);
        }
        for (int pair = 0; pair < pairs; pair++) {
            int t = pair / group;
            int h = firstHead + pair % group;
            if (max[pair] == Float.NEGATIVE_INFINITY) {
                lse[t * heads + h] = Float.NEGATIVE_INFINITY; // no key weighs anything: zero output, as per row
                continue;
            }
            float inverse = 1f / total[pair];
            float[] sum = sums[pair];
            int base = qBase[pair];
            for (int i = 0; i < hd; i++) {
                output[base + i] = sum[i] * inverse;
            }
            lse[t * heads + h] = max[pair] + (float) Math.log(total[pair]);
        }
    }

    /**
     * Per chunk of keys, eight products at a time added into each pair's score row, in loops the JIT
     * auto-vectorizes; then each row scaled and its largest score taken. Register-blocked with the Vector API (a
     * tile of pairs x keys summed over the head dimension in registers), one row over 64 sealed caches in turn took
     * 303-449 us instead of 173-238 on an AVX2 machine
     * (docs/figures/concurrency/attention-kernel-vs-dd54589-vector-api-all-loops-rejected-*): the tile reads a cache
     * line from each of the hd transposed key rows in turn, more streams than the hardware prefetcher follows, where
     * this loop streams through eight rows at a time.
     */
    static void scaledScores(float[] q, int[] qBase, int pairs, float[][] keysT, int hd, int keyCount,
                                   float scale, float[][] scores, float[] max) {
        for (int pair = 0; pair < pairs; pair++) {
            Arrays.fill(scores[pair], 0, keyCount, 0f);
        }
        for (int from = 0; from < keyCount; from += KEY_CHUNK) {
            int to = Math.min(keyCount, from + KEY_CHUNK);
            int i = 0;
            for (; i + 8 <= hd; i += 8) {
                for (int pair = 0; pair < pairs; pair++) {
                    addProducts8(scores[pair], q, qBase[pair] + i, keysT, i, from, to);
                }
            }
            for (; i < hd; i++) {
                for (int pair = 0; pair < pairs; pair++) {
                    FewRowDense.addProducts(scores[pair], q[qBase[pair] + i], keysT[i], from, to);
                }
            }
        }
        for (int pair = 0; pair < pairs; pair++) {
            float[] row = scores[pair];
            float m = Float.NEGATIVE_INFINITY;
            for (int s = 0; s < keyCount; s++) {
                row[s] = row[s] * scale;
                m = Math.max(m, row[s]);
            }
            max[pair] = m;
        }
    }

    /** {@link VectorAttention#weightedValues}'s numbers in loops the JIT auto-vectorizes, eight keys at a time. */
    static void scalarWeightedValues(float[][] weights, int pairs, float[][] values, int hd, int keyCount,
                                     float[][] sums) {
        for (int pair = 0; pair < pairs; pair++) {
            Arrays.fill(sums[pair], 0, hd, 0f);
        }
        int s = 0;
        for (; s + 8 <= keyCount; s += 8) {
            for (int pair = 0; pair < pairs; pair++) {
                addProducts8(sums[pair], weights[pair], s, values, s, 0, hd);
            }
        }
        for (; s < keyCount; s++) {
            for (int pair = 0; pair < pairs; pair++) {
                FewRowDense.addProducts(sums[pair], weights[pair][s], values[s], 0, hd);
            }
        }
    }

    /**
     * y[j] = fma(a[at + 7], w[row + 7][j], ... fma(a[at], w[row][j], y[j])), for j in [from, to): eight products
     * added one at a time, each fused (one rounding), the same order as eight calls of {@link FewRowDense#addProducts}.
     * Measured, not derived: in this loop nest eight products per pass over y are faster than four (16 rows over 64
     * sealed blocks in turn 138 -> 99 us per row, one row 280 -> 220; {@code bin/benchmark attention-kernel-vs}),
     * and fused products faster than a multiply and an add (docs/performance.md, session 12). Two pairs per pass (one
     * read of w for two y's) is 2.4x slower here: the JIT does not vectorize a loop that stores into two arrays it
     * cannot prove apart (docs/figures/concurrency/attention-kernel-vs-433a7fd-two-pairs-per-pass-rejected-*); nor
     * does it vectorize sixteen products per pass (3x slower in the value loop:
     * docs/figures/concurrency/attention-kernel-sixteen-products-rejected-*).
     */
    private static void addProducts8(float[] y, float[] a, int at, float[][] w, int row, int from, int to) {
        float a0 = a[at], a1 = a[at + 1], a2 = a[at + 2], a3 = a[at + 3];
        float a4 = a[at + 4], a5 = a[at + 5], a6 = a[at + 6], a7 = a[at + 7];
        float[] w0 = w[row], w1 = w[row + 1], w2 = w[row + 2], w3 = w[row + 3];
        float[] w4 = w[row + 4], w5 = w[row + 5], w6 = w[row + 6], w7 = w[row + 7];
        for (int j = from; j < to; j++) {
            float v = Math.fma(a3, w3[j], Math.fma(a2, w2[j], Math.fma(a1, w1[j], Math.fma(a0, w0[j], y[j]))));
            y[j] = Math.fma(a7, w7[j], Math.fma(a6, w6[j], Math.fma(a5, w5[j], Math.fma(a4, w4[j], v))));
        }
    }

    /**
     * Per-thread working arrays (CPU backends are shared by a TaskManager's threads), grown to the largest call seen:
     * one KV head's keys transposed and values as rows, and the pairs' scores and unnormalized outputs.
     */
    private static final class Scratch {
        private static final ThreadLocal<Scratch> PER_THREAD = ThreadLocal.withInitial(Scratch::new);

        float[][] keysT = new float[0][];
        float[][] values = new float[0][];
        float[][] scores = new float[0][];
        float[][] sums = new float[0][];
        int[] qBase = new int[0];
        float[] max = new float[0];
        float[] total = new float[0];
        float[] shifts = new float[0];
        private int keyCapacity;

        static Scratch get(int keyCount, int headDim, int pairs) {
            Scratch scratch = PER_THREAD.get();
            if (keyCount > scratch.keyCapacity || scratch.keysT.length != headDim) {
                int capacity = Math.max(keyCount, scratch.keyCapacity * 2);
                scratch.keyCapacity = capacity;
                scratch.keysT = new float[headDim][capacity];
                scratch.values = new float[capacity][headDim];
                scratch.shifts = new float[capacity];
                scratch.scores = new float[0][];
            }
            if (pairs > scratch.scores.length) {
                int count = Math.max(pairs, scratch.scores.length * 2);
                scratch.scores = new float[count][scratch.keyCapacity];
                scratch.sums = new float[count][headDim];
                scratch.qBase = new int[count];
                scratch.max = new float[count];
                scratch.total = new float[count];
            }
            return scratch;
        }
    }
}
