package org.starflink.engine.backend;

import org.starflink.engine.attention.AttentionPartial;
import org.starflink.engine.forward.KvSpan;
import org.starflink.engine.model.ModelConfig;

/**
 * Attention with output and log-sum-exp in plain float32 Java, for few query rows (decode steps, phase-2 layer
 * requests). There the work is one pass over the keys, O(S * Hkv * hd), and handing the keys to a native
 * library would first copy all of them: this loop reads them in place. Same mask and semantics as
 * {@link Backend#attend}.
 */
public final class JavaAttention {
    private JavaAttention() {
    }

    public static AttentionPartial attend(ModelConfig config, float[] q, int[] queryPositions, KvSpan kv) {
        int rows = queryPositions.length;
        int heads = config.heads();
        int kvHeads = config.kvHeads();
        int group = config.groupSize();
        int hd = config.headDim();
        int keyCount = kv.length();
        int[] keyPositions = kv.positions();
        float[] keys = kv.keys();
        float[] values = kv.values();
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
