package org.starflink.engine.wire;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.api.Test;
import org.starflink.engine.EngineException;
import org.starflink.engine.attention.AttentionPartial;
import org.starflink.engine.attention.LayerRequest;
import org.starflink.engine.backend.Arena;
import org.starflink.engine.backend.Backend;
import org.starflink.engine.backend.KvCache;
import org.starflink.engine.backend.KvPrecision;
import org.starflink.engine.backend.ReferenceBackend;
import org.starflink.engine.forward.Transformer;
import org.starflink.engine.model.ModelConfig;
import org.starflink.engine.numeric.Bf16;
import org.starflink.engine.testing.KvTesting;
import org.starflink.engine.testing.RandomModels;

class WireFormatTest {
    /** 3 layers, 2 KV heads of 4: a KV width of 8. */
    private static final ModelConfig CONFIG = RandomModels.config(16, 3, 4, 2, 20);

    private static Backend backend(KvPrecision precision) {
        return new ReferenceBackend(CONFIG, RandomModels.weights(CONFIG, 1), precision);
    }

    /** A cache of {@code length} tokens at positions 2048... with random keys and values in every layer. */
    private static KvCache randomCache(Backend backend, int length, Random random) {
        KvCache cache = backend.newKvCache(4);
        try (Arena arena = new Arena()) {
            for (int layer = 0; layer < CONFIG.layers(); layer++) {
                cache.append(layer, Transformer.range(2048, length),
                        backend.upload(arena, RandomModels.vector(random, length * 8), length, 2, 4),
                        backend.upload(arena, RandomModels.vector(random, length * 8), length, 2, 4));
            }
        }
        return cache;
    }

    @ParameterizedTest
    @EnumSource(KvPrecision.class)
    void kvCacheSurvivesPagesAndBytesExactly(KvPrecision precision) {
        Random random = new Random(1);
        Backend backend = backend(precision);
        int length = 150;
        KvCache cache = randomCache(backend, length, random);
        List<KvPage> pages = new ArrayList<>();
        for (KvPage page : KvPages.pagesFrom(cache, 64, 0)) {
            byte[] bytes = page.toBytes();
            // the page's size is its header and exactly its values: half of float32 for BF16
            assertEquals(19 + 2 * page.count() * 8 * precision.bytes, bytes.length);
            pages.add(KvPage.fromBytes(bytes));
        }
        assertEquals(3 * 3, pages.size()); // 64 + 64 + 22 tokens per layer
        Collections.shuffle(pages, random);
        KvCache rebuilt = KvPages.assemble(backend, pages);
        for (int layer = 0; layer < 3; layer++) {
            assertEquals(length, rebuilt.length(layer));
            assertArrayEquals(KvTesting.keys(cache, layer), KvTesting.keys(rebuilt, layer));
            assertArrayEquals(KvTesting.values(cache, layer), KvTesting.values(rebuilt, layer));
            assertArrayEquals(cache.positions(layer, 0, length), rebuilt.positions(layer, 0, length));
        }
    }

    @Test
    void bf16CacheHoldsTheRoundedValues() {
        Random random = new Random(4);
        KvCache f32 = randomCache(backend(KvPrecision.F32), 10, random);
        KvCache bf16 = KvTesting.copyRange(backend(KvPrecision.BF16), f32, 0, 10); // F32 rows into a BF16 cache
        float[] exact = KvTesting.keys(f32, 1);
        float[] rounded = KvTesting.keys(bf16, 1);
        for (int i = 0; i < exact.length; i++) {
            assertEquals(Bf16.toFloat(Bf16.fromFloat(exact[i])), rounded[i]);
        }
        assertEquals(f32.bytes() / 2, bf16.bytes());
    }

    /** Pages written before KV went BF16 (version 1, float32, no precision byte) still restore: a migration. */
    @ParameterizedTest
    @EnumSource(KvPrecision.class)
    void version1PagesMigrate(KvPrecision target) {
        float[] keys = {1.0f, -2.5f, 3.1415927f, 0.1f};
        float[] values = {4f, 5f, 6f, 7.0000005f};
        ByteBuffer v1 = ByteBuffer.allocate(2 + 16 + 32).order(ByteOrder.LITTLE_ENDIAN);
        v1.put((byte) 'K').put((byte) 1).putInt(0).putInt(0).putInt(100).putInt(1);
        for (float k : keys) {
            v1.putFloat(k);
        }
        for (float v : values) {
            v1.putFloat(v);
        }
        ModelConfig oneKvHead = RandomModels.config(16, 1, 4, 1, 20); // KV width 4
        Backend backend = new ReferenceBackend(oneKvHead, RandomModels.weights(oneKvHead, 1), target);
        KvPage page = KvPage.fromBytes(v1.array());
        assertEquals(KvPrecision.F32, page.precision());
        KvCache cache = KvPages.assemble(backend, List.of(page));
        float[] restored = KvTesting.keys(cache, 0);
        for (int i = 0; i < keys.length; i++) {
            float expected = target == KvPrecision.F32 ? keys[i] : Bf16.toFloat(Bf16.fromFloat(keys[i]));
            assertEquals(expected, restored[i]);
        }
        assertArrayEquals(new int[] {100}, cache.positions(0, 0, 1));
    }

    @Test
    void pagesFromAnOffsetStartAtItsPage() {
        KvCache cache = randomCache(backend(KvPrecision.BF16), 100, new Random(2));
        List<KvPage> pages = KvPages.pagesFrom(cache, 32, 70).stream().filter(p -> p.layer() == 0).toList();
        assertEquals(List.of(2, 3), pages.stream().map(KvPage::page).toList()); // 64..95 and 96..99
        assertEquals(2048 + 64, pages.get(0).firstPosition());
        assertEquals(4, pages.get(1).count());
    }

    @Test
    void missingPageIsReported() {
        Backend backend = backend(KvPrecision.BF16);
        List<KvPage> pages = new ArrayList<>(KvPages.pagesFrom(randomCache(backend, 100, new Random(3)), 32, 0));
        pages.remove(1);
        EngineException e = assertThrows(EngineException.class, () -> KvPages.assemble(backend, pages));
        assertEquals("KV pages of layer 0 are incomplete: page 1 missing", e.getMessage());
    }

    @Test
    void layerRequestAndPartialRoundTrip() {
        Random random = new Random(2);
        LayerRequest request = new LayerRequest(4, new int[] {900, 901, 902}, RandomModels.vector(random, 3 * 16));
        LayerRequest back = PhaseTwoCodec.requestFromBytes(PhaseTwoCodec.toBytes(request));
        assertEquals(4, back.layer());
        assertArrayEquals(request.positions(), back.positions());
        assertArrayEquals(request.q(), back.q());

        float[] lse = RandomModels.vector(random, 6);
        lse[2] = Float.NEGATIVE_INFINITY;
        AttentionPartial partial = new AttentionPartial(3, 2, RandomModels.vector(random, 3 * 2 * 8), lse);
        AttentionPartial decoded = PhaseTwoCodec.partialFromBytes(PhaseTwoCodec.toBytes(partial));
        assertEquals(3, decoded.rows());
        assertArrayEquals(partial.output(), decoded.output());
        assertArrayEquals(partial.lse(), decoded.lse());
    }

    @Test
    void batchesKeepTheirItemsInOrderAndRefuseCorruptCounts() {
        Random random = new Random(6);
        List<LayerRequest> requests = List.of(
                new LayerRequest(1, new int[] {900}, RandomModels.vector(random, 16)),
                new LayerRequest(1, new int[] {40, 41, 42}, RandomModels.vector(random, 3 * 16)));
        List<LayerRequest> back = PhaseTwoCodec.requestsFromBytes(PhaseTwoCodec.requestsToBytes(requests));
        assertEquals(2, back.size());
        for (int i = 0; i < 2; i++) {
            assertArrayEquals(requests.get(i).positions(), back.get(i).positions());
            assertArrayEquals(requests.get(i).q(), back.get(i).q());
        }
        List<AttentionPartial> partials = List.of(AttentionPartial.empty(1, 2, 8),
                new AttentionPartial(3, 2, RandomModels.vector(random, 3 * 2 * 8), RandomModels.vector(random, 6)));
        byte[] bundle = PhaseTwoCodec.bundleToBytes(new int[] {5}, List.of(partials));
        List<AttentionPartial> decoded = PhaseTwoCodec.bundleFromBytes(bundle).partials().get(0);
        assertArrayEquals(partials.get(1).output(), decoded.get(1).output());
        assertArrayEquals(partials.get(0).lse(), decoded.get(0).lse());

        // the batch's item count: after the bundle's tag, version and block list (4 + 4 bytes), the batch's length
        // prefix (4), its tag and version
        byte[] corrupt = bundle.clone();
        ByteBuffer.wrap(corrupt).order(ByteOrder.LITTLE_ENDIAN).putInt(2 + 8 + 4 + 2, 1_000_000_000);
        assertEquals("corrupt attention partial batch: 1000000000 items",
                assertThrows(EngineException.class, () -> PhaseTwoCodec.bundleFromBytes(corrupt)).getMessage());
        assertEquals("not a serialized layer request batch", assertThrows(EngineException.class,
                () -> PhaseTwoCodec.requestsFromBytes(bundle)).getMessage());
    }

    @Test
    void aBundleKeepsEachBlocksBatchAndRefusesDisorder() {
        Random random = new Random(7);
        List<AttentionPartial> first = List.of(
                new AttentionPartial(1, 2, RandomModels.vector(random, 16), RandomModels.vector(random, 2)));
        List<AttentionPartial> second = List.of(AttentionPartial.empty(1, 2, 8));
        byte[] bundle = PhaseTwoCodec.bundleToBytes(new int[] {3, 11}, List.of(first, second));
        assertArrayEquals(new int[] {3, 11}, PhaseTwoCodec.bundleBlocks(bundle));
        PhaseTwoCodec.PartialBundle decoded = PhaseTwoCodec.bundleFromBytes(bundle);
        assertArrayEquals(new int[] {3, 11}, decoded.blocks());
        assertArrayEquals(first.get(0).output(), decoded.partials().get(0).get(0).output());
        assertArrayEquals(first.get(0).lse(), decoded.partials().get(0).get(0).lse());
        assertArrayEquals(second.get(0).lse(), decoded.partials().get(1).get(0).lse());

        // the same bytes as the nested form written value by value: each partial, each batch, the bundle
        ByteBuffer nested = ByteBuffer.allocate(bundle.length).order(ByteOrder.LITTLE_ENDIAN);
        nested.put((byte) 'U').put((byte) 1).putInt(2).putInt(3).putInt(11);
        for (List<AttentionPartial> batch : List.of(first, second)) {
            byte[] one = PhaseTwoCodec.toBytes(batch.get(0));
            nested.putInt(2 + 4 + 4 + one.length).put((byte) 'B').put((byte) 1).putInt(1).putInt(one.length).put(one);
        }
        assertArrayEquals(nested.array(), bundle);

        assertThrows(IllegalArgumentException.class,
                () -> PhaseTwoCodec.bundleToBytes(new int[] {11, 3}, List.of(first, second)));
        assertThrows(IllegalArgumentException.class, () -> PhaseTwoCodec.bundleToBytes(new int[] {3}, List.of()));
        assertEquals("not a serialized partial bundle", assertThrows(EngineException.class,
                () -> PhaseTwoCodec.bundleBlocks(PhaseTwoCodec.toBytes(first.get(0)))).getMessage());
        byte[] truncated = java.util.Arrays.copyOf(bundle, bundle.length - 1);
        assertThrows(EngineException.class, () -> PhaseTwoCodec.bundleFromBytes(truncated));
    }

    @Test
    void hostStateRoundTripsAndOldFormatIsRefusedClearly() {
        Random random = new Random(5);
        List<KvPage> pages = KvPages.pagesFrom(randomCache(backend(KvPrecision.BF16), 7, random), 64, 0);
        HostState state = new HostState(2055, 1, new int[] {2055}, RandomModels.vector(random, 16),
                RandomModels.vector(random, 16), null, pages);
        HostState back = HostState.fromBytes(state.toBytes());
        assertEquals(2055, back.nextPosition());
        assertEquals(1, back.layer());
        assertArrayEquals(state.x(), back.x());
        assertArrayEquals(state.q(), back.q());
        assertEquals(null, back.logits());
        assertEquals(pages.size(), back.pages().size());
        assertArrayEquals(pages.get(2).keys(), back.pages().get(2).keys());

        byte[] version1 = {1, 0, 0, 8, 7};
        assertEquals("query host state of format 1 (float32 KV, before this release) cannot be restored: finish "
                        + "or cancel the questions in flight, then take the savepoint again",
                assertThrows(EngineException.class, () -> HostState.fromBytes(version1)).getMessage());
        byte[] truncated = java.util.Arrays.copyOf(state.toBytes(), 40);
        assertThrows(EngineException.class, () -> HostState.fromBytes(truncated));
    }

    @Test
    void garbageIsRejectedWithAMessage() {
        assertEquals("not a serialized KV page",
                assertThrows(EngineException.class, () -> KvPage.fromBytes(new byte[] {1, 2, 3})).getMessage());
        byte[] future = new KvPage(0, 0, 0, 1, KvPrecision.BF16, new byte[4], new byte[4]).toBytes();
        future[1] = 9;
        assertEquals("unsupported KV page version 9 (this build reads [1, 2])",
                assertThrows(EngineException.class, () -> KvPage.fromBytes(future)).getMessage());
    }
}
