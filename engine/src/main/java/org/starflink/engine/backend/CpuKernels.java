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
     * Keys outermost: one key row, widened once, serves every query row and every query head of its KV head, so that
     * a batch of rows (several questions' requests stacked, {@link #attendEach}) shares one pass over the keys. Each
     * (row, head) pair is a chain of its own whose arithmetic (dot over i in order, max, then exp and sums over the
     * keys in order) never depends on the other rows: a row's numbers are the same whether it is attended alone or
     * stacked with others. Dot products run four chains at a time so that the CPU overlaps their latencies; each
     * chain still sums in its own order, so this changes no bit either.
     *
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
        int chains = rows * group; // chain c: row c / group, query head firstHead + c % group
        float[][] scores = new float[chains][keyCount];
        float[] max = new float[chains];
        float[] sum = new float[chains];
        int[] base = new int[chains]; // where chain c's q row and output row start
        float[] row = new float[hd];
        for (int kvHead = 0; kvHead < kvHeads; kvHead++) {
            int firstHead = kvHead * group;
            for (int c = 0; c < chains; c++) {
                base[c] = ((c / group) * heads + firstHead + c % group) * hd;
            }
            Arrays.fill(max, Float.NEGATIVE_INFINITY);
            for (int s = 0; s < keyCount; s++) {
                kv.keyRow(layer, s, kvHead, row);
                int c = 0;
                for (; c + 4 <= chains; c += 4) {
                    int b0 = base[c];
                    int b1 = base[c + 1];
                    int b2 = base[c + 2];
                    int b3 = base[c + 3];
                    float d0 = 0f;
                    float d1 = 0f;
                    float d2 = 0f;
                    float d3 = 0f;
                    for (int i = 0; i < hd; i++) {
                        float k = row[i];
                        d0 += q[b0 + i] * k;
                        d1 += q[b1 + i] * k;
                        d2 += q[b2 + i] * k;
                        d3 += q[b3 + i] * k;
                    }
                    score(scores, max, c, s, d0, scale, keyPositions[s] > queryPositions[c / group]);
                    score(scores, max, c + 1, s, d1, scale, keyPositions[s] > queryPositions[(c + 1) / group]);
                    score(scores, max, c + 2, s, d2, scale, keyPositions[s] > queryPositions[(c + 2) / group]);
                    score(scores, max, c + 3, s, d3, scale, keyPositions[s] > queryPositions[(c + 3) / group]);
                }
                for (; c < chains; c++) {
                    int b = base[c];
                    float dot = 0f;
                    for (int i = 0; i < hd; i++) {
                        dot += q[b + i] * row[i];
                    }
                    score(scores, max, c, s, dot, scale, keyPositions[s] > queryPositions[c / group]);
                }
            }
            Arrays.fill(sum, 0f);
            for (int s = 0; s < keyCount; s++) {
                kv.valueRow(layer, s, kvHead, row);
                for (int c = 0; c < chains; c++) {
                    if (keyPositions[s] > queryPositions[c / group]) {
                        continue;
                    }
                    float p = (float) Math.exp(scores[c][s] - max[c]);
                    sum[c] += p;
                    int b = base[c];
                    for (int i = 0; i < hd; i++) {
                        output[b + i] += p * row[i];
                    }
                }
            }
            for (int c = 0; c < chains; c++) {
                int h = (c / group) * heads + firstHead + c % group;
                if (max[c] == Float.NEGATIVE_INFINITY) {
                    lse[h] = Float.NEGATIVE_INFINITY; // no visible key: zero output
                    continue;
                }
                float inverse = 1f / sum[c];
                int b = base[c];
                for (int i = 0; i < hd; i++) {
                    output[b + i] *= inverse;
                }
                lse[h] = max[c] + (float) Math.log(sum[c]);
            }
        }
        return new AttentionPartial(rows, heads, output, lse);
    }

    private static void score(float[][] scores, float[] max, int chain, int key, float dot, float scale,
                              boolean masked) {
        float score = masked ? Float.NEGATIVE_INFINITY : dot * scale;
        scores[chain][key] = score;
        max[chain] = Math.max(max[chain], score);
    }

    /**
     * {@link #attend} of several independent row sets over one cache in one pass over its keys: the sets stacked, the
     * result split back. Each set's partial is bit for bit what {@code attend} returns for it alone.
     *
     * @param qs per set [T_i, H, hd]
     */
    public static List<AttentionPartial> attendEach(ModelConfig config, List<float[]> qs, List<int[]> positions,
                                                    HostKvCache kv, int layer) {
        int rows = 0;
        for (int[] p : positions) {
            rows += p.length;
        }
        int rowWidth = config.heads() * config.headDim();
        float[] q = new float[rows * rowWidth];
        int[] stackedPositions = new int[rows];
        int at = 0;
        for (int set = 0; set < qs.size(); set++) {
            System.arraycopy(qs.get(set), 0, q, at * rowWidth, positions.get(set).length * rowWidth);
            System.arraycopy(positions.get(set), 0, stackedPositions, at, positions.get(set).length);
            at += positions.get(set).length;
        }
        AttentionPartial stacked = attend(config, q, stackedPositions, kv, layer);
        List<AttentionPartial> partials = new ArrayList<>(qs.size());
        at = 0;
        for (int[] p : positions) {
            int heads = config.heads();
            partials.add(new AttentionPartial(p.length, heads,
                    Arrays.copyOfRange(stacked.output(), at * rowWidth, (at + p.length) * rowWidth),
                    Arrays.copyOfRange(stacked.lse(), at * heads, (at + p.length) * heads)));
            at += p.length;
        }
        return partials;
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
