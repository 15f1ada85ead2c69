package org.starflink.engine.star;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.starflink.engine.EngineException;

/**
 * How a context is cut: consecutive blocks of {@code blockSize} tokens (the last may be shorter); the anchor is
 * the first {@code anchorSize} tokens of the context (1 <= a <= b; the paper's default a = b).
 */
public record BlockLayout(int blockSize, int anchorSize) {

    public BlockLayout {
        if (blockSize < 1) {
            throw new EngineException("block size must be >= 1, got " + blockSize);
        }
        if (anchorSize < 1 || anchorSize > blockSize) {
            throw new EngineException("anchor size must be in 1..block size (" + blockSize + "), got " + anchorSize);
        }
    }

    /** The paper's default: the anchor is the whole first block. */
    public static BlockLayout of(int blockSize) {
        return new BlockLayout(blockSize, blockSize);
    }

    /** Global attention through the same code path: one block holding the whole context. */
    public static BlockLayout global(int contextLength) {
        return of(Math.max(1, contextLength));
    }

    /** The blocks of a context token sequence (BOS included), in order. */
    public List<ContextBlock> split(int[] contextTokens) {
        List<ContextBlock> blocks = new ArrayList<>();
        for (int start = 0, index = 0; start < contextTokens.length; start += blockSize, index++) {
            int end = Math.min(contextTokens.length, start + blockSize);
            blocks.add(new ContextBlock(index, start, Arrays.copyOfRange(contextTokens, start, end)));
        }
        return blocks;
    }

    /** The anchor tokens of a context: its first min(a, N) tokens. */
    public int[] anchor(int[] contextTokens) {
        return Arrays.copyOf(contextTokens, Math.min(anchorSize, contextTokens.length));
    }
}
