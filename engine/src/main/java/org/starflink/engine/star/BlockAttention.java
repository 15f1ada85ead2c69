package org.starflink.engine.star;

import org.starflink.engine.attention.AttentionPartial;
import org.starflink.engine.backend.Backend;
import org.starflink.engine.forward.KvCache;

/** A context block's side of phase 2: the partial attention of the host's query rows over the block's KV. */
public final class BlockAttention {
    private BlockAttention() {
    }

    /**
     * All of the block's keys are visible: they precede every query position, so the backend's causal-by-position
     * mask masks nothing (unlike the reference implementation's bottom-right causal mask on remote blocks).
     */
    public static AttentionPartial answer(Backend backend, LayerRequest request, KvCache block) {
        return backend.attend(request.q(), request.positions(), block.span(request.layer()));
    }
}
