package org.starflink.engine.star;

import java.util.List;
import org.starflink.engine.backend.KvCache;
import org.starflink.engine.forward.Transformer;

/**
 * Star Attention phase 1: encodes one context block into its own KV cache, independent of every other block.
 *
 * <p>Block 0 is encoded alone. Block i > 0 is encoded as if it were the sequence [anchor; block i], the anchor at
 * positions 0..a-1 and the block at its global positions, and only the block's KV is kept. Because attention is
 * causal, the anchor's KV depends on the anchor alone: it is computed once ({@link #encodeAnchor}) and every block
 * of the document attends to it, which is exactly the [anchor; block] encoding at half the linear-layer work.
 *
 * <p>Also causal: a block's earlier tokens never see its later ones, so a block can be extended append-only
 * ({@link #extend}) as more of its document arrives, giving exactly the KV of a one-shot encode.
 */
public final class BlockEncoder {
    private final Transformer transformer;

    public BlockEncoder(Transformer transformer) {
        this.transformer = transformer;
    }

    /** The anchor's KV: its tokens encoded alone at positions 0..a-1. The caller closes it. */
    public KvCache encodeAnchor(int[] anchorTokens) {
        KvCache anchor = transformer.backend().newKvCache(anchorTokens.length);
        try {
            transformer.forward(anchorTokens, Transformer.range(0, anchorTokens.length), List.of(), anchor, false);
            return anchor;
        } catch (RuntimeException e) {
            anchor.close();
            throw e;
        }
    }

    /**
     * Encodes a whole block.
     *
     * @param anchor the document's anchor KV ({@link #encodeAnchor}); ignored for block 0
     * @return the block's KV; the caller closes it
     */
    public KvCache encode(ContextBlock block, KvCache anchor) {
        KvCache cache = transformer.backend().newKvCache(block.tokens().length);
        try {
            extend(cache, block.index() == 0 ? null : anchor, block.tokens(), block.start());
            return cache;
        } catch (RuntimeException e) {
            cache.close();
            throw e;
        }
    }

    /**
     * Appends tokens to a block's cache; they attend to the anchor (null for block 0) and to the block so far.
     *
     * @param firstPosition global position of the first new token (the block's start + its current length)
     */
    public void extend(KvCache block, KvCache anchor, int[] newTokens, int firstPosition) {
        transformer.forward(newTokens, Transformer.range(firstPosition, newTokens.length),
                anchor == null ? List.of() : List.of(anchor), block, false);
    }
}
