package org.starflink.engine.star;

import java.util.ArrayList;
import java.util.List;
import org.starflink.engine.attention.AttentionPartial;
import org.starflink.engine.attention.LayerRequest;
import org.starflink.engine.backend.Arena;
import org.starflink.engine.backend.Backend;
import org.starflink.engine.backend.KvCache;
import org.starflink.engine.backend.Partial;
import org.starflink.engine.backend.Tensor;

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
     * exactly what {@link #answer} computes for it alone ({@link Backend#attendEach}): a question's numbers never
     * depend on which other questions shared its batch, so replays that batch differently give the same tokens.
     */
    public static List<AttentionPartial> answerEach(Backend backend, List<LayerRequest> requests, KvCache block) {
        var config = backend.config();
        int layer = requests.get(0).layer();
        try (Arena scope = new Arena()) {
            List<Tensor> qs = new ArrayList<>(requests.size());
            List<int[]> positions = new ArrayList<>(requests.size());
            for (LayerRequest request : requests) {
                if (request.layer() != layer) {
                    throw new IllegalArgumentException("a batch of requests for layers " + layer + " and "
                            + request.layer());
                }
                qs.add(backend.upload(scope, request.q(), request.rows(), config.heads(), config.headDim()));
                positions.add(request.positions());
            }
            List<AttentionPartial> partials = new ArrayList<>(requests.size());
            for (Partial partial : backend.attendEach(scope, qs, positions, block, layer)) {
                partials.add(backend.download(partial));
            }
            return partials;
        }
    }
}
