package org.starflink.engine.attention;

import java.util.Arrays;

/**
 * The attention of some query rows over one subset of keys, normalized within that subset, plus the log-sum-exp
 * of the scores that normalized it. Partials over disjoint key subsets merge exactly into attention over their
 * union ({@link AttentionMerge}).
 *
 * @param rows   number of query rows T
 * @param heads  number of query heads H
 * @param output [T, H, headDim]; zero for a row with no visible key
 * @param lse    [T, H] natural-log sum of exp(q.k / sqrt(d)) over the visible keys; -inf when none is visible
 */
public record AttentionPartial(int rows, int heads, float[] output, float[] lse) {

    public AttentionPartial {
        if (lse.length != rows * heads || output.length % (rows * heads) != 0) {
            throw new IllegalArgumentException("partial shape mismatch: rows=" + rows + " heads=" + heads
                    + " lse=" + lse.length + " output=" + output.length);
        }
    }

    public int headDim() {
        return output.length / (rows * heads);
    }

    /** A partial over no keys at all: the identity of the merge. */
    public static AttentionPartial empty(int rows, int heads, int headDim) {
        float[] lse = new float[rows * heads];
        Arrays.fill(lse, Float.NEGATIVE_INFINITY);
        return new AttentionPartial(rows, heads, new float[rows * heads * headDim], lse);
    }
}
