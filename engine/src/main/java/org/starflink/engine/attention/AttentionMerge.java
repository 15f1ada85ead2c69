package org.starflink.engine.attention;

import java.util.List;

/**
 * The exact log-sum-exp merge of attention partials over disjoint key sets (Star Attention phase 2, vLLM's
 * merge_attn_states). Per head and row, in fp32:
 * <pre>
 *   LSE = log sum_h exp(lse_h)          A = sum_h exp(lse_h - LSE) * A_h
 * </pre>
 * A partial with lse = -inf (no visible key) gets weight 0; a row where every partial is -inf stays -inf with a
 * zero output. Mathematically the merge is associative and commutative; in floating point the grouping moves the
 * last bits, so callers that must be bit-reproducible (a replayed stream) merge in a canonical order.
 */
public final class AttentionMerge {
    private AttentionMerge() {
    }

    /** Merges partials of the same query rows; the list must not be empty. */
    public static AttentionPartial merge(List<AttentionPartial> partials) {
        AttentionPartial first = partials.get(0);
        int rows = first.rows();
        int heads = first.heads();
        int headDim = first.headDim();
        for (AttentionPartial p : partials) {
            if (p.rows() != rows || p.heads() != heads || p.headDim() != headDim) {
                throw new IllegalArgumentException("cannot merge partials of different shapes");
            }
        }
        float[] output = new float[rows * heads * headDim];
        float[] lse = new float[rows * heads];
        for (int rh = 0; rh < rows * heads; rh++) {
            float max = Float.NEGATIVE_INFINITY;
            for (AttentionPartial p : partials) {
                max = Math.max(max, p.lse()[rh]);
            }
            if (max == Float.NEGATIVE_INFINITY) {
                lse[rh] = Float.NEGATIVE_INFINITY;
                continue; // no partial saw a key: output stays zero
            }
            float sum = 0f;
            for (AttentionPartial p : partials) {
                sum += (float) Math.exp(p.lse()[rh] - max);
            }
            float total = max + (float) Math.log(sum);
            lse[rh] = total;
            int base = rh * headDim;
            for (AttentionPartial p : partials) {
                float weight = (float) Math.exp(p.lse()[rh] - total);
                if (weight == 0f) {
                    continue;
                }
                float[] out = p.output();
                for (int i = 0; i < headDim; i++) {
                    output[base + i] += weight * out[base + i];
                }
            }
        }
        return new AttentionPartial(rows, heads, output, lse);
    }
}
