package org.starflink.engine.star;

import java.util.ArrayList;
import java.util.List;
import org.starflink.engine.attention.AttentionPartial;
import org.starflink.engine.attention.LayerRequest;
import org.starflink.engine.backend.Backend;
import org.starflink.engine.backend.KvCache;
import org.starflink.engine.generate.Session;

/**
 * Phase 2 in one process: a query host over context blocks held locally. The streaming job runs the same
 * {@link QueryHost} and {@link BlockAttention} with the blocks on other workers. Closing the session closes its
 * host; the blocks belong to the caller.
 */
public final class StarSession implements Session {
    private final Backend backend;
    private final List<KvCache> blocks;
    private final QueryHost host;

    /** @param blocks the phase-1 KV of every context block, in block order */
    public StarSession(QueryHost host, Backend backend, List<KvCache> blocks) {
        this.host = host;
        this.backend = backend;
        this.blocks = List.copyOf(blocks);
    }

    @Override
    public float[] feed(int[] tokens) {
        LayerRequest request = host.start(tokens);
        while (request != null) {
            List<AttentionPartial> partials = new ArrayList<>(blocks.size());
            for (KvCache block : blocks) {
                partials.add(BlockAttention.answer(backend, request, block));
            }
            request = host.complete(partials);
        }
        return host.logits();
    }

    @Override
    public int length() {
        return host.nextPosition();
    }

    @Override
    public void close() {
        host.close();
    }
}
