package org.starflink.benchmarks;

import java.util.Random;
import org.starflink.engine.attention.AttentionPartial;
import org.starflink.engine.backend.CpuKernels;
import org.starflink.engine.backend.HandleLedger;
import org.starflink.engine.backend.HostKvCache;
import org.starflink.engine.backend.HostTensor;
import org.starflink.engine.backend.KvPrecision;
import org.starflink.engine.model.ModelConfig;

/**
 * The few-row attention loop alone: one decode row over S keys of stories260K's shape (8 heads, 4 KV heads, hd 8),
 * {@link CpuKernels#attend} over a BF16 and an F32 cache, and the loop as it was before the Backend redesign
 * (4cbe055's JavaAttention over float32 keys read in place, copied in {@link #before}), alternately, five rounds
 * of 20,000 calls. Usage: bin/benchmark attention-kernel [S, default 320]
 */
public final class AttentionKernelBenchmark {
    private static final int CALLS = 20_000;

    public static void main(String[] args) {
        ModelConfig c = Stories260K.load().config();
        int keyCount = Integer.parseInt(args.length > 0 ? args[0] : "320");
        int width = c.kvWidth();
        int hd = c.headDim();
        System.out.println("# machine: " + Machine.describe() + ", load average " + EngineProfile.loadAverage());
        System.out.printf("# %d heads, %d KV heads, hd %d, %d keys, one query row%n", c.heads(), c.kvHeads(), hd,
                keyCount);
        Random random = new Random(1);
        float[] keys = new float[keyCount * width];
        float[] values = new float[keyCount * width];
        for (int i = 0; i < keys.length; i++) {
            keys[i] = (float) random.nextGaussian();
            values[i] = (float) random.nextGaussian();
        }
        int[] positions = new int[keyCount];
        for (int i = 0; i < keyCount; i++) {
            positions[i] = i;
        }
        float[] q = new float[c.heads() * hd];
        for (int i = 0; i < q.length; i++) {
            q[i] = (float) random.nextGaussian();
        }
        HandleLedger ledger = new HandleLedger();
        KvPrecision[] precisions = {KvPrecision.BF16, KvPrecision.F32};
        HostKvCache[] caches = new HostKvCache[precisions.length];
        for (int p = 0; p < precisions.length; p++) {
            caches[p] = new HostKvCache(c.layers(), width, hd, precisions[p], keyCount, ledger,
                    t -> ((HostTensor) t).data());
            caches[p].append(0, positions, new HostTensor(ledger, keys, keyCount, c.kvHeads(), hd),
                    new HostTensor(ledger, values, keyCount, c.kvHeads(), hd));
        }
        int[] queryPosition = {keyCount};
        double sink = 0;
        for (int round = 1; round <= 5; round++) {
            for (int p = 0; p < precisions.length; p++) {
                long start = System.nanoTime();
                for (int i = 0; i < CALLS; i++) {
                    sink += CpuKernels.attend(c, q, queryPosition, caches[p], 0).lse()[0];
                }
                System.out.printf("round %d  CpuKernels.attend, %s KV      %7.2f us/call%n", round, precisions[p],
                        (System.nanoTime() - start) / 1e3 / CALLS);
            }
            long start = System.nanoTime();
            for (int i = 0; i < CALLS; i++) {
                sink += before(c, q, queryPosition, positions, keys, values, keyCount).lse()[0];
            }
            System.out.printf("round %d  before (4cbe055), F32 KV      %7.2f us/call%n", round,
                    (System.nanoTime() - start) / 1e3 / CALLS);
        }
        System.out.println(sink == 42 ? "" : "# done");
    }

    /** 4cbe055's JavaAttention.attend, its KvSpan unpacked into arrays. */
    static AttentionPartial before(ModelConfig config, float[] q, int[] queryPositions, int[] keyPositions,
                                   float[] keys, float[] values, int keyCount) {
        int rows = queryPositions.length;
        int heads = config.heads();
        int kvHeads = config.kvHeads();
        int group = config.groupSize();
        int hd = config.headDim();
        float scale = (float) (1.0 / Math.sqrt(hd));
        float[] output = new float[rows * heads * hd];
        float[] lse = new float[rows * heads];
        float[] scores = new float[keyCount];
        for (int t = 0; t < rows; t++) {
            int queryPosition = queryPositions[t];
            for (int h = 0; h < heads; h++) {
                int kvOffset = (h / group) * hd;
                int qBase = (t * heads + h) * hd;
                float max = Float.NEGATIVE_INFINITY;
                for (int s = 0; s < keyCount; s++) {
                    if (keyPositions[s] > queryPosition) {
                        scores[s] = Float.NEGATIVE_INFINITY;
                        continue;
                    }
                    int kBase = s * kvHeads * hd + kvOffset;
                    float dot = 0f;
                    for (int i = 0; i < hd; i++) {
                        dot += q[qBase + i] * keys[kBase + i];
                    }
                    scores[s] = dot * scale;
                    max = Math.max(max, scores[s]);
                }
                if (max == Float.NEGATIVE_INFINITY) {
                    lse[t * heads + h] = Float.NEGATIVE_INFINITY;
                    continue; // no visible key: zero output
                }
                float sum = 0f;
                for (int s = 0; s < keyCount; s++) {
                    if (scores[s] == Float.NEGATIVE_INFINITY) {
                        continue;
                    }
                    float p = (float) Math.exp(scores[s] - max);
                    sum += p;
                    int vBase = s * kvHeads * hd + kvOffset;
                    for (int i = 0; i < hd; i++) {
                        output[qBase + i] += p * values[vBase + i];
                    }
                }
                float inverse = 1f / sum;
                for (int i = 0; i < hd; i++) {
                    output[qBase + i] *= inverse;
                }
                lse[t * heads + h] = max + (float) Math.log(sum);
            }
        }
        return new AttentionPartial(rows, heads, output, lse);
    }
}
