package org.starflink.engine.testing;

import java.util.List;
import java.util.Random;
import org.starflink.engine.attention.AttentionPartial;
import org.starflink.engine.attention.LayerRequest;
import org.starflink.engine.backend.Backend;
import org.starflink.engine.backend.KvCache;
import org.starflink.engine.forward.Transformer;
import org.starflink.engine.star.BlockAttention;
import org.starflink.engine.star.QueryHost;
import org.starflink.engine.wire.HostState;

/** Forward passes that touch every kind of handle a backend hands out, for the leak tests of every backend. */
public final class Passes {
    private Passes() {
    }

    /**
     * A 48-token prefill and a decode step into a new cache, then a query host's 6-row pass over {@code block}
     * that goes through its serialized state after every layer (as the Flink query host's restore does). Token
     * ids are drawn below {@code vocab}; {@code block} holds 64 tokens at positions 0..63.
     */
    public static void prefillDecodeAndQueryHost(Transformer transformer, KvCache block, Random random, int vocab) {
        Backend backend = transformer.backend();
        try (KvCache cache = backend.newKvCache(64)) {
            transformer.forward(RandomModels.tokens(random, 48, vocab), Transformer.range(0, 48), List.of(), cache,
                    true);
            transformer.forward(RandomModels.tokens(random, 1, vocab), Transformer.range(48, 1), List.of(), cache,
                    true);
        }
        QueryHost host = new QueryHost(transformer, 64, 8);
        try {
            LayerRequest request = host.start(RandomModels.tokens(random, 6, vocab));
            while (request != null) {
                AttentionPartial partial = BlockAttention.answer(backend, request, block);
                QueryHost restored = QueryHost.restore(transformer, HostState.fromBytes(host.state().toBytes()));
                host.close();
                host = restored;
                request = host.complete(List.of(partial));
            }
        } finally {
            host.close();
        }
    }

    /** The largest logit minus the second largest: how far a row is from a tie. */
    public static double topTwoGap(float[] row) {
        float first = Float.NEGATIVE_INFINITY;
        float second = Float.NEGATIVE_INFINITY;
        for (float v : row) {
            if (v > first) {
                second = first;
                first = v;
            } else if (v > second) {
                second = v;
            }
        }
        return first - second;
    }
}
