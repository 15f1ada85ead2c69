package org.starflink.engine.star;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
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

    /**
     * A batch's hosts completed together ({@link QueryHost#completeEach}: their rows stacked in the backend's passes
     * over the weights) compute bit for bit what each computes alone, through prompts of different lengths (one longer
     * than the backend's few-row path, 20 tokens) and the decode steps after them.
     */
    @Test
    void hostsCompletedTogetherGetTheNumbersTheyGetAlone() {
        Model model = SharedModels.stories260K();
        Transformer transformer = transformer(model);
        LongContextGenerator generator = new LongContextGenerator(model, transformer);
        int[] context = generator.contextTokens("Lily and Tom went to the park. They saw a big dog. ".repeat(8));
        EncodedContext encoded = generator.encode(context, BlockLayout.of(64));
        String[] prompts = {"Tom said", "Once upon a time there was a little girl named Lily who loved to play in the",
                "The dog"};
        List<QueryHost> together = new ArrayList<>();
        List<QueryHost> alone = new ArrayList<>();
        List<int[]> next = new ArrayList<>();
        for (String prompt : prompts) {
            together.add(new QueryHost(transformer, context.length, 32));
            alone.add(new QueryHost(transformer, context.length, 32));
            next.add(generator.questionTokens(prompt));
        }
        assertTrue(next.get(1).length > 16, "one prompt longer than the few-row path: " + next.get(1).length);
        for (int step = 0; step < 4; step++) {
            List<LayerRequest> requests = new ArrayList<>();
            for (int h = 0; h < prompts.length; h++) {
                requests.add(together.get(h).start(next.get(h)));
                assertArrayEquals(requests.get(h).q(), alone.get(h).start(next.get(h)).q());
            }
            while (requests.get(0) != null) {
                List<List<AttentionPartial>> partials = new ArrayList<>();
                for (LayerRequest request : requests) {
                    partials.add(partials(transformer, encoded, request));
                }
                List<LayerRequest> batched = QueryHost.completeEach(together, partials);
                for (int h = 0; h < prompts.length; h++) {
                    LayerRequest single = alone.get(h).complete(partials.get(h));
                    assertEquals(single == null, batched.get(h) == null);
                    if (single != null) {
                        assertArrayEquals(single.q(), batched.get(h).q(), "host " + h + " layer " + single.layer());
                    }
                }
                requests = batched;
            }
            for (int h = 0; h < prompts.length; h++) {
                assertArrayEquals(alone.get(h).logits(), together.get(h).logits(), "host " + h + " step " + step);
                next.set(h, new int[] {org.starflink.engine.generate.Sampler.argmax(together.get(h).logits())});
            }
        }
        together.forEach(QueryHost::close);
        alone.forEach(QueryHost::close);
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
