package org.starflink.engine.star;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.starflink.engine.attention.AttentionPartial;
import org.starflink.engine.backend.BackendKind;
import org.starflink.engine.checkpoint.ModelRegistry;
import org.starflink.engine.attention.LayerRequest;
import org.starflink.engine.backend.KvCache;
import org.starflink.engine.forward.Transformer;
import org.starflink.engine.model.Model;
import org.starflink.engine.wire.HostState;
import org.starflink.engine.testing.SharedModels;

/** A query host serialized after every layer and restored continues bit-for-bit like one that never stopped. */
class QueryHostStateTest {

    @Test
    void restoringAfterEveryLayerChangesNothing() {
        Model model = SharedModels.stories260K();
        Transformer transformer = new Transformer(ModelRegistry.backend(model, BackendKind.DJL));
        LongContextGenerator generator = new LongContextGenerator(model, transformer);
        int[] context = generator.contextTokens("Lily and Tom went to the park. They saw a big dog. ".repeat(8));
        EncodedContext encoded = generator.encode(context, BlockLayout.of(64));
        int[] question = generator.questionTokens("Tom said");

        QueryHost uninterrupted = new QueryHost(transformer, context.length, 16);
        QueryHost restored = new QueryHost(transformer, context.length, 16);
        int[] next = question;
        for (int step = 0; step < 6; step++) {
            LayerRequest a = uninterrupted.start(next);
            LayerRequest b = restored.start(next);
            while (a != null) {
                assertArrayEquals(a.q(), b.q());
                restored = roundTrip(transformer, restored); // mid-pass
                a = uninterrupted.complete(partials(transformer, encoded, a));
                b = restored.complete(partials(transformer, encoded, b));
                restored = roundTrip(transformer, restored);
            }
            assertArrayEquals(uninterrupted.logits(), restored.logits());
            next = new int[] {org.starflink.engine.generate.Sampler.argmax(uninterrupted.logits())};
        }
    }

    /** The host through its serialized state, as Flink's keyed state holds it; the old object is closed. */
    private static QueryHost roundTrip(Transformer transformer, QueryHost host) {
        QueryHost restored = QueryHost.restore(transformer, HostState.fromBytes(host.state().toBytes()));
        host.close();
        return restored;
    }

    private static List<AttentionPartial> partials(Transformer t, EncodedContext context, LayerRequest request) {
        List<AttentionPartial> partials = new ArrayList<>();
        for (KvCache block : context.blocks()) {
            partials.add(BlockAttention.answer(t.backend(), request, block));
        }
        return partials;
    }
}
