package org.starflink.engine.star;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

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
import org.starflink.engine.wire.KvPage;
import org.starflink.engine.wire.KvPages;
import org.starflink.engine.testing.SharedModels;

/** A query host serialized after every layer and restored continues bit-for-bit like one that never stopped. */
class QueryHostStateTest {

    @Test
    void restoringAfterEveryLayerChangesNothing() {
        Model model = SharedModels.stories260K();
        Transformer transformer = transformer(model);
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

    /**
     * What the Flink query host stores per layer: the pass state and the pages the layer changed. Kept in a map by
     * page (as MapState does), those pages rebuild a host that continues exactly, and what one decode step writes
     * does not grow with the sequence: at most one page per layer.
     */
    @Test
    void changedPagesAloneRebuildTheHostAndStaySmall() {
        Model model = SharedModels.stories260K();
        Transformer transformer = transformer(model);
        LongContextGenerator generator = new LongContextGenerator(model, transformer);
        int[] context = generator.contextTokens("Lily and Tom went to the park. ".repeat(6));
        EncodedContext encoded = generator.encode(context, BlockLayout.of(32));
        int pageTokens = 4;
        java.util.Map<Integer, KvPage> stored = new java.util.HashMap<>();
        QueryHost host = new QueryHost(transformer, context.length, 16);
        QueryHost uninterrupted = new QueryHost(transformer, context.length, 16);
        int[] next = generator.questionTokens("Tom said");
        long largestDecodeWrite = 0;
        int rowBytes = model.config().kvWidth() * 2 * 2; // keys + values, BF16
        for (int step = 0; step < 12; step++) {
            LayerRequest request = host.start(next);
            LayerRequest reference = uninterrupted.start(next);
            while (request != null) {
                long written = 0;
                for (KvPage page : host.changedKvPages(pageTokens)) {
                    stored.put(KvPages.stateKey(page), page);
                    written += page.keys().length + page.values().length;
                }
                if (next.length == 1) {
                    largestDecodeWrite = Math.max(largestDecodeWrite, written);
                }
                QueryHost restored = QueryHost.restore(transformer,
                        HostState.fromBytes(host.passState().toBytes()).withPages(List.copyOf(stored.values())));
                host.close();
                host = restored;
                request = host.complete(partials(transformer, encoded, request));
                reference = uninterrupted.complete(partials(transformer, encoded, reference));
            }
            assertArrayEquals(uninterrupted.logits(), host.logits());
            next = new int[] {org.starflink.engine.generate.Sampler.argmax(host.logits())};
        }
        assertTrue(largestDecodeWrite <= (long) pageTokens * rowBytes, "a decode step wrote " + largestDecodeWrite
                + " bytes of KV for one layer; one page is " + pageTokens * rowBytes);
        host.close();
        uninterrupted.close();
    }

    private static Transformer transformer(Model model) {
        return new Transformer(ModelRegistry.backend(model, BackendKind.DJL));
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
