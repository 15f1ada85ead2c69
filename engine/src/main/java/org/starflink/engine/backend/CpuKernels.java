package org.starflink.engine.backend;

import java.util.ArrayList;
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
 * them in place, each KV head's keys and values widened once per call and shared by the head's whole query group.
 * Same mask and semantics as {@link Backend#attend}.
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
     * Each (row, query head) pair is computed on its own: a row's numbers are the same whether it is attended alone
     * or stacked with other questions' rows ({@link #attendEach}), which then share the widened keys and values. Two
     * loop nests compute those same numbers: {@link StackedAttention} when every row sees every key, else the loop per
     * pair below, which skips masked keys.
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
        float scale = (float) (1.0 / Math.sqrt(hd));
        float[] output = new float[rows * heads * hd];
        float[] lse = new float[rows * heads];
        // keys that every row sees (remote blocks, decode steps): the stacked loop nest, faster from one pair on
        boolean stacked = seesEveryKey(queryPositions, kv, layer);
        for (int kvHead = 0; kvHead < kvHeads; kvHead++) {
            if (stacked) {
                StackedAttention.attendHead(q, rows, heads, kvHead * group, group, hd, kv, layer, kvHead, scale,
                        output, lse);
            } else {
                attendHeadPerPair(q, queryPositions, heads, kvHead * group, group, hd, kv, layer, kvHead, scale,
                        output, lse);
            }
        }
        return new AttentionPartial(rows, heads, output, lse);
    }

    /**
     * The pairs (row t, query head h), h in {@code [firstHead, firstHead + group)}, over KV head {@code kvHead}, one
     * pair at a time, skipping the keys a row does not see; writes their rows of output [T, H, hd] and lse [T, H].
     */
    static void attendHeadPerPair(float[] q, int[] queryPositions, int heads, int firstHead, int group, int hd,
                                  HostKvCache kv, int layer, int kvHead, float scale, float[] output, float[] lse) {
        int keyCount = kv.length(layer);
        int[] keyPositions = kv.positionsView(layer);
        Scratch scratch = Scratch.get(keyCount, hd);
        float[] keys = scratch.keys;
        float[] values = scratch.values;
        float[] scores = scratch.scores;
        // the head's keys and values widened once, shared by its whole query group and every row
        kv.keyHead(layer, kvHead, keys);
        kv.valueHead(layer, kvHead, values);
        for (int t = 0; t < queryPositions.length; t++) {
            int queryPosition = queryPositions[t];
            for (int h = firstHead; h < firstHead + group; h++) {
                int qBase = (t * heads + h) * hd;
                float max = Float.NEGATIVE_INFINITY;
                for (int s = 0; s < keyCount; s++) {
                    if (keyPositions[s] > queryPosition) {
                        scores[s] = Float.NEGATIVE_INFINITY;
                        continue;
                    }
                    int kBase = s * hd;
                    float dot = 0f;
                    for (int i = 0; i < hd; i++) {
                        dot = Math.fma(q[qBase + i], keys[kBase + i], dot);
                    }
                    scores[s] = dot * scale;
                    max = Math.max(max, scores[s]);
                }
                if (max == Float.NEGATIVE_INFINITY) {
                    lse[t * heads + h] = Float.NEGATIVE_INFINITY; // no visible key: zero output
                    continue;
                }
                float sum = SoftmaxWeights.weigh(scores, keyCount, max, scratch.shifts); // masked keys weigh 0
                for (int s = 0; s < keyCount; s++) {
                    if (keyPositions[s] > queryPosition) {
                        continue;
                    }
                    float p = scores[s];
                    int vBase = s * hd;
                    for (int i = 0; i < hd; i++) {
                        output[qBase + i] = Math.fma(p, values[vBase + i], output[qBase + i]);
                    }
                }
                float inverse = 1f / sum;
                for (int i = 0; i < hd; i++) {
                    output[qBase + i] *= inverse;
                }
                lse[t * heads + h] = max + (float) Math.log(sum);
            }
        }
    }

    /** True when every key of the layer is at or before every row's position: no key is masked for any row. */
    public static boolean seesEveryKey(int[] queryPositions, HostKvCache kv, int layer) {
        int latestKey = kv.latestPosition(layer);
        for (int position : queryPositions) {
            if (position < latestKey) {
                return false;
            }
        }
        return true;
    }

    /**
     * {@link #attend} of several independent row sets over one cache in one pass over its keys: the sets stacked, the
     * result split back. Each set's partial is bit for bit what {@code attend} returns for it alone.
     *
     * @param qs per set [T_i, H, hd]
     */
    public static List<AttentionPartial> attendEach(ModelConfig config, List<float[]> qs, List<int[]> positions,
                                                    HostKvCache kv, int layer) {
        AttentionPartial stacked = attend(config, FewRowDense.stack(qs), FewRowDense.stackPositions(positions), kv,
                layer);
        int heads = config.heads();
        int[] rowsPerSet = positions.stream().mapToInt(p -> p.length).toArray();
        List<float[]> outputs = FewRowDense.unstack(stacked.output(), rowsPerSet, heads * config.headDim());
        List<float[]> lses = FewRowDense.unstack(stacked.lse(), rowsPerSet, heads);
        List<AttentionPartial> partials = new ArrayList<>(qs.size());
        for (int set = 0; set < qs.size(); set++) {
            partials.add(new AttentionPartial(rowsPerSet[set], heads, outputs.get(set), lses.get(set)));
        }
        return partials;
    }

    /**
     * Per-thread working arrays of the few-row attention loops (CPU backends are shared by a TaskManager's threads):
     * one KV head's keys and values [S, hd] widened to float32, and one head's scores [S]. Reused across calls, so a
     * decode step allocates only its results; they grow to the largest cache seen (S * hd * 8 + S * 8 bytes).
     */
    static final class Scratch {
        private static final ThreadLocal<Scratch> PER_THREAD = ThreadLocal.withInitial(Scratch::new);

        float[] keys = new float[0];
        float[] values = new float[0];
        float[] scores = new float[0];
        float[] shifts = new float[0];
        double[] scoresF64 = new double[0];

        static Scratch get(int keyCount, int headDim) {
            Scratch scratch = PER_THREAD.get();
            if (scratch.scores.length < keyCount || scratch.keys.length < keyCount * headDim) {
                int capacity = Math.max(keyCount, scratch.scores.length * 2);
                scratch.keys = new float[capacity * headDim];
                scratch.values = new float[capacity * headDim];
                scratch.scores = new float[capacity];
                scratch.shifts = new float[capacity];
                scratch.scoresF64 = new double[capacity];
            }
            return scratch;
        }
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
