package org.starflink.engine.backend;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.BiFunction;
import java.util.function.Function;
import org.starflink.engine.attention.AttentionMerge;
import org.starflink.engine.attention.AttentionPartial;
import org.starflink.engine.model.ModelConfig;

/**
 * What the CPU backends share, in plain Java: float32 attention with output and log-sum-exp for few query
 * rows (decode steps, phase-2 layer requests), and the host-side merge. For few rows the work is one pass over the
 * keys, O(S * Hkv * hd), and handing the keys to a native library would first copy all of them: this loop reads
 * them in place, one key row per KV head widened once and shared by the head's whole query group. Same mask and
 * semantics as {@link Backend#attend}.
 */
public final class CpuKernels {
    private CpuKernels() {
    }

    /** {@code cache} as the CPU backends' cache; anything else (another backend's, a closed one) is an error. */
    public static HostKvCache hostCache(KvCache cache) {
        if (!(cache instanceof HostKvCache host) || !host.isOpen()) {
            throw new IllegalArgumentException("not an open KV cache of a CPU backend: " + cache);
        }
        return host;
    }

    /**
     * @param q [T, H, hd] query rows
     * @return output [T, H, hd] and lse [T, H]
     */
    public static AttentionPartial attend(ModelConfig config, float[] q, int[] queryPositions, HostKvCache kv, int layer) {
        int rows = queryPositions.length;
        int heads = config.heads();
        int kvHeads = config.kvHeads();
        int group = config.groupSize();
        int hd = config.headDim();
        int keyCount = kv.length(layer);
        int[] keyPositions = kv.positionsView(layer);
        float scale = (float) (1.0 / Math.sqrt(hd));
        float[] output = new float[rows * heads * hd];
        float[] lse = new float[rows * heads];
        float[][] scores = new float[group][keyCount];
        float[] max = new float[group];
        float[] sum = new float[group];
        float[] row = new float[hd];
        for (int t = 0; t < rows; t++) {
            int queryPosition = queryPositions[t];
            for (int kvHead = 0; kvHead < kvHeads; kvHead++) {
                int firstHead = kvHead * group;
                Arrays.fill(max, Float.NEGATIVE_INFINITY);
                for (int s = 0; s < keyCount; s++) {
                    if (keyPositions[s] > queryPosition) {
                        for (int g = 0; g < group; g++) {
                            scores[g][s] = Float.NEGATIVE_INFINITY;
                        }
                        continue;
                    }
                    kv.keyRow(layer, s, kvHead, row);
                    for (int g = 0; g < group; g++) {
                        int qBase = (t * heads + firstHead + g) * hd;
                        float dot = 0f;
                        for (int i = 0; i < hd; i++) {
                            dot += q[qBase + i] * row[i];
                        }
                        scores[g][s] = dot * scale;
                        max[g] = Math.max(max[g], scores[g][s]);
                    }
                }
                Arrays.fill(sum, 0f);
                for (int s = 0; s < keyCount; s++) {
                    if (keyPositions[s] > queryPosition) {
                        continue;
                    }
                    kv.valueRow(layer, s, kvHead, row);
                    for (int g = 0; g < group; g++) {
                        float p = (float) Math.exp(scores[g][s] - max[g]);
                        sum[g] += p;
                        int oBase = (t * heads + firstHead + g) * hd;
                        for (int i = 0; i < hd; i++) {
                            output[oBase + i] += p * row[i];
                        }
                    }
                }
                for (int g = 0; g < group; g++) {
                    int h = firstHead + g;
                    if (max[g] == Float.NEGATIVE_INFINITY) {
                        lse[t * heads + h] = Float.NEGATIVE_INFINITY; // no visible key: zero output
                        continue;
                    }
                    float inverse = 1f / sum[g];
                    int oBase = (t * heads + h) * hd;
                    for (int i = 0; i < hd; i++) {
                        output[oBase + i] *= inverse;
                    }
                    lse[t * heads + h] = max[g] + (float) Math.log(sum[g]);
                }
            }
        }
        return new AttentionPartial(rows, heads, output, lse);
    }

    /**
     * The float32 merge of {@link AttentionMerge} over partials whose values {@code read} sees on the host; the
     * result is wrapped back into tensors by {@code wrap(values, shape)}.
     */
    public static Partial merge(List<Partial> partials, Function<Tensor, float[]> read,
                         BiFunction<float[], int[], Tensor> wrap) {
        List<AttentionPartial> host = new ArrayList<>(partials.size());
        for (Partial p : partials) {
            host.add(new AttentionPartial(p.lse().dim(0), p.lse().dim(1), read.apply(p.output()),
                    read.apply(p.lse())));
        }
        AttentionPartial merged = AttentionMerge.merge(host);
        return new Partial(wrap.apply(merged.output(), new int[] {merged.rows(), merged.heads(), merged.headDim()}),
                wrap.apply(merged.lse(), new int[] {merged.rows(), merged.heads()}));
    }
}
