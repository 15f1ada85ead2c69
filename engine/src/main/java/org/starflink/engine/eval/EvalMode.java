package org.starflink.engine.eval;

import org.starflink.engine.star.AttentionMode;
import org.starflink.engine.star.BlockLayout;

/**
 * A way of attending the context: global, or Star with blocks of a quarter of the context (the paper's setting)
 * or of a fixed size. The anchor is the block size.
 *
 * @param fixedBlock block size for {@code star-fixed}; 0 for global and star-N/4
 */
public record EvalMode(String name, AttentionMode attention, int fixedBlock) {
    public static final EvalMode GLOBAL = new EvalMode("global", AttentionMode.GLOBAL, 0);
    public static final EvalMode STAR_QUARTER = new EvalMode("star-N/4", AttentionMode.STAR, 0);

    public static EvalMode starFixed(int block) {
        return new EvalMode("star-" + block, AttentionMode.STAR, block);
    }

    public BlockLayout layout(int contextLength) {
        if (attention == AttentionMode.GLOBAL) {
            return BlockLayout.global(contextLength);
        }
        int block = fixedBlock > 0 ? fixedBlock : Math.max(1, (contextLength + 3) / 4);
        return BlockLayout.of(block);
    }
}
