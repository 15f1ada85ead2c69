package org.starflink.engine.star;

import java.util.List;
import org.starflink.engine.backend.KvCache;

/**
 * A context after phase 1. Holds backend memory: close it when no session reads it any more.
 *
 * @param length      N, the number of context tokens (BOS included)
 * @param blocks      each block's KV, in block order
 * @param encodeNanos wall time of phase 1 (anchor + every block, one after another in this process)
 */
public record EncodedContext(int length, List<KvCache> blocks, long encodeNanos) implements AutoCloseable {

    @Override
    public void close() {
        blocks.forEach(KvCache::close);
    }
}
