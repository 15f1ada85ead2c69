package org.starflink.engine.star;

import java.util.ArrayList;
import java.util.List;
import org.starflink.engine.attention.AttentionPartial;
import org.starflink.engine.attention.LayerRequest;
import org.starflink.engine.backend.Arena;
import org.starflink.engine.backend.Backend;
import org.starflink.engine.backend.KvCache;

/** A context block's side of phase 2: the partial attention of the host's query rows over the block's KV. */
public final class BlockAttention {
    private BlockAttention() {
    }

    /**
     * All of the block's keys are visible: they precede every query position, so the backend's causal-by-position
     * mask masks nothing (unlike the reference implementation's bottom-right causal mask on remote blocks).
     */
    public static AttentionPartial answer(Backend backend, LayerRequest request, KvCache block) {
        var config = backend.config();
        try (Arena scope = new Arena()) {
            var q = backend.upload(scope, request.q(), request.rows(), config.heads(), config.headDim());
            return backend.download(backend.attend(scope, q, request.positions(), block, request.layer()));
        }
    }

    /**
     * The partials of several questions' requests (a batch from one query host), one per request, in order. Each is
     * computed on its own, exactly as {@link #answer} computes it alone: a question's numbers never depend on
     * which other questions shared its batch, so replays that batch differently give the same tokens.
     */
    public static List<AttentionPartial> answerEach(Backend backend, List<LayerRequest> requests, KvCache block) {
        List<AttentionPartial> partials = new ArrayList<>(requests.size());
        for (LayerRequest request : requests) {
            partials.add(answer(backend, request, block));
        }
        return partials;
    }
}
