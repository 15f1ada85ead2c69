package org.starflink.engine.wire;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.starflink.engine.EngineException;
import org.starflink.engine.attention.AttentionPartial;
import org.starflink.engine.forward.KvCache;
import org.starflink.engine.forward.KvSpan;
import org.starflink.engine.forward.Transformer;
import org.starflink.engine.star.LayerRequest;
import org.starflink.engine.testing.RandomModels;

class WireFormatTest {

    @Test
    void kvCacheSurvivesPagesAndBytesExactly() {
        Random random = new Random(1);
        KvCache cache = new KvCache(3, 8, 4);
        int length = 150;
        for (int layer = 0; layer < 3; layer++) {
            cache.append(layer, Transformer.range(2048, length), RandomModels.vector(random, length * 8),
                    RandomModels.vector(random, length * 8));
        }
        List<KvPage> pages = new ArrayList<>();
        for (KvPage page : KvPages.pagesFrom(cache, 64, 0)) {
            pages.add(KvPage.fromBytes(page.toBytes()));
        }
        assertEquals(3 * 3, pages.size()); // 64 + 64 + 22 tokens per layer
        Collections.shuffle(pages, random);
        KvCache rebuilt = KvPages.assemble(pages, 3, 8);
        for (int layer = 0; layer < 3; layer++) {
            KvSpan expected = cache.span(layer);
            KvSpan actual = rebuilt.span(layer);
            assertEquals(expected.length(), actual.length());
            assertArrayEquals(java.util.Arrays.copyOf(expected.keys(), length * 8),
                    java.util.Arrays.copyOf(actual.keys(), length * 8));
            assertArrayEquals(java.util.Arrays.copyOf(expected.values(), length * 8),
                    java.util.Arrays.copyOf(actual.values(), length * 8));
            assertArrayEquals(java.util.Arrays.copyOf(expected.positions(), length),
                    java.util.Arrays.copyOf(actual.positions(), length));
        }
    }

    @Test
    void pagesFromAnOffsetStartAtItsPage() {
        KvCache cache = new KvCache(1, 2, 4);
        cache.append(0, Transformer.range(0, 100), new float[200], new float[200]);
        List<KvPage> pages = KvPages.pagesFrom(cache, 32, 70); // page 2 (64..95) and page 3 (96..99)
        assertEquals(List.of(2, 3), pages.stream().map(KvPage::page).toList());
        assertEquals(64, pages.get(0).firstPosition());
        assertEquals(4, pages.get(1).count());
    }

    @Test
    void missingPageIsReported() {
        KvCache cache = new KvCache(1, 2, 4);
        cache.append(0, Transformer.range(0, 100), new float[200], new float[200]);
        List<KvPage> pages = new ArrayList<>(KvPages.pagesFrom(cache, 32, 0));
        pages.remove(1);
        EngineException e = assertThrows(EngineException.class, () -> KvPages.assemble(pages, 1, 2));
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
    void garbageIsRejectedWithAMessage() {
        assertEquals("not a serialized KV page",
                assertThrows(EngineException.class, () -> KvPage.fromBytes(new byte[] {1, 2, 3})).getMessage());
        byte[] future = new KvPage(0, 0, 0, 1, new float[2], new float[2]).toBytes();
        future[1] = 9;
        assertEquals("unsupported KV page version 9 (this build reads 1)",
                assertThrows(EngineException.class, () -> KvPage.fromBytes(future)).getMessage());
    }
}
