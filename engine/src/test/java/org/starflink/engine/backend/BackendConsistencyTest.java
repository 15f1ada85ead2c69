package org.starflink.engine.backend;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.starflink.engine.testing.RandomModels.maxAbsDiff;

import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.starflink.engine.attention.AttentionPartial;
import org.starflink.engine.backend.djl.DjlBackend;
import org.starflink.engine.model.ModelConfig;
import org.starflink.engine.model.ModelWeights;
import org.starflink.engine.testing.RandomModels;

/**
 * Every backend op, through the {@link Backend} interface, on random inputs against the reference (llama.cpp's
 * test-backend-ops idea): one harness, each op compared by max absolute difference, for plain Llama, GQA, and
 * llama3 rope scaling + q/k/v biases, with both KV precisions. Then the interface's contract (shapes, lifetimes,
 * ownership, empty attention), which every backend must keep.
 */
class BackendConsistencyTest {
    private static final double TOLERANCE = 1e-4;

    static Stream<Arguments> configs() {
        return Stream.of(
                Arguments.of("MHA", RandomModels.config(32, 2, 4, 4, 50), KvPrecision.F32),
                Arguments.of("GQA", RandomModels.config(48, 2, 6, 2, 50), KvPrecision.BF16),
                Arguments.of("llama3+bias", RandomModels.configWithExtras(64, 2, 8, 2, 50), KvPrecision.BF16),
                Arguments.of("llama3+bias f32", RandomModels.configWithExtras(64, 2, 8, 2, 50), KvPrecision.F32));
    }

    /** 37 rows go through libtorch, 12 through the DJL backend's few-row Java path (FewRowDense). */
    @ParameterizedTest(name = "{0}")
    @MethodSource("configs")
    void everyOpMatchesTheReference(String name, ModelConfig config, KvPrecision precision) {
        everyOpMatchesTheReference(config, precision, 37);
        everyOpMatchesTheReference(config, precision, 12);
    }

    private void everyOpMatchesTheReference(ModelConfig config, KvPrecision precision, int rows) {
        ModelWeights weights = RandomModels.weights(config, 7);
        try (Backend djl = new DjlBackend(config, weights, precision); Arena a = new Arena(); Arena b = new Arena()) {
            Backend reference = new ReferenceBackend(config, weights, precision);
            Random random = new Random(11);
            int hd = config.headDim();
            int[] tokens = RandomModels.tokens(random, rows, config.vocabSize());
            int[] positions = new int[rows];
            for (int i = 0; i < rows; i++) {
                positions[i] = 1000 + 3 * i; // arbitrary, non-contiguous positions
            }
            Tensor xRef = reference.embed(a, tokens);
            Tensor xDjl = djl.embed(b, tokens);
            check("embed", reference.download(xRef), djl.download(xDjl));
            // Keys from before, inside and after the query rows' range: causal by position masks some of them.
            int[] keyPositions = new int[rows];
            for (int i = 0; i < rows; i++) {
                keyPositions[i] = 995 + 3 * i + (i % 3);
            }
            try (KvCache cacheRef = reference.newKvCache(1); KvCache cacheDjl = djl.newKvCache(1)) {
                for (int layer = 0; layer < config.layers(); layer++) {
                    Qkv expected = reference.projectQkv(a, layer, xRef, positions);
                    Qkv actual = djl.projectQkv(b, layer, xDjl, positions);
                    check("q", reference.download(expected.q()), djl.download(actual.q()));
                    check("k", reference.download(expected.k()), djl.download(actual.k()));
                    check("v", reference.download(expected.v()), djl.download(actual.v()));
                    // the same K and V into both caches, so that attention is compared on equal inputs
                    float[] k = reference.download(expected.k());
                    float[] v = reference.download(expected.v());
                    int[] kvShape = {rows, config.kvHeads(), hd};
                    cacheRef.append(layer, keyPositions, expected.k(), expected.v());
                    cacheDjl.append(layer, keyPositions, djl.upload(b, k, kvShape), djl.upload(b, v, kvShape));

                    float[] q = reference.download(expected.q());
                    Partial attRef = reference.attend(a, expected.q(), positions, cacheRef, layer);
                    Partial attDjl = djl.attend(b, djl.upload(b, q, rows, config.heads(), hd), positions, cacheDjl,
                            layer);
                    check("attention output", reference.download(attRef.output()), djl.download(attDjl.output()));
                    check("attention lse", reference.download(attRef.lse()), djl.download(attDjl.lse()));

                    // Few rows (decode, phase-2 requests) take the DJL backend's in-place path.
                    int[] decodeRows = {positions[0], positions[rows - 1]};
                    float[] decodeQ = new float[2 * config.queryWidth()];
                    System.arraycopy(q, 0, decodeQ, 0, config.queryWidth());
                    System.arraycopy(q, (rows - 1) * config.queryWidth(), decodeQ, config.queryWidth(),
                            config.queryWidth());
                    Partial decRef = reference.attend(a, reference.upload(a, decodeQ, 2, config.heads(), hd),
                            decodeRows, cacheRef, layer);
                    Partial decDjl = djl.attend(b, djl.upload(b, decodeQ, 2, config.heads(), hd), decodeRows,
                            cacheDjl, layer);
                    check("decode attention output", reference.download(decRef.output()),
                            djl.download(decDjl.output()));
                    check("decode attention lse", reference.download(decRef.lse()), djl.download(decDjl.lse()));

                    // merge of two partials of the same rows (the rows' keys split in two caches' worth)
                    Partial mergedRef = reference.merge(a, List.of(attRef, reference.upload(a,
                            AttentionPartial.empty(rows, config.heads(), hd))));
                    Partial mergedDjl = djl.merge(b, List.of(attDjl, djl.upload(b,
                            AttentionPartial.empty(rows, config.heads(), hd))));
                    check("merge with an empty partial", reference.download(attRef.output()),
                            reference.download(mergedRef.output()));
                    check("merge", reference.download(mergedRef.output()), djl.download(mergedDjl.output()));

                    float[] attention = reference.download(attRef.output());
                    Tensor nextRef = reference.finishLayer(a, layer, xRef, attRef.output());
                    Tensor nextDjl = djl.finishLayer(b, layer, xDjl,
                            djl.upload(b, attention, rows, config.heads(), hd));
                    check("finishLayer", reference.download(nextRef), djl.download(nextDjl));
                    xRef = nextRef;
                    xDjl = djl.upload(b, reference.download(nextRef), rows, config.dim()); // equal inputs again
                }
            }
            check("rows", reference.download(reference.rows(a, xRef, 3, 9)), djl.download(djl.rows(b, xDjl, 3, 9)));
            check("logits", reference.logits(xRef), djl.logits(xDjl));
        }
    }

    /**
     * The DJL backend's stacked ops ({@code projectQkvEach}, {@code finishLayerEach}, {@code logitsEach}) give every
     * set of rows bit for bit what the single op gives it, for sets on its few-row Java path (stacked) and beyond it.
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("configs")
    void stackedSetsGetBitForBitTheirAloneNumbers(String name, ModelConfig config, KvPrecision precision) {
        Random random = new Random(13);
        try (Backend djl = new DjlBackend(config, RandomModels.weights(config, 5), precision);
             Arena arena = new Arena()) {
            int[] rowCounts = {1, 3, 20, 1, 16};
            List<Tensor> xs = new java.util.ArrayList<>();
            List<Tensor> attentions = new java.util.ArrayList<>();
            List<int[]> positions = new java.util.ArrayList<>();
            for (int rows : rowCounts) {
                xs.add(djl.upload(arena, RandomModels.vector(random, rows * config.dim()), rows, config.dim()));
                attentions.add(djl.upload(arena, RandomModels.vector(random, rows * config.queryWidth()), rows,
                        config.heads(), config.headDim()));
                int[] p = new int[rows];
                for (int i = 0; i < rows; i++) {
                    p[i] = 40 + random.nextInt(200);
                }
                positions.add(p);
            }
            for (int layer = 0; layer < config.layers(); layer++) {
                List<Qkv> qkvs = djl.projectQkvEach(arena, layer, xs, positions);
                List<Tensor> nexts = djl.finishLayerEach(arena, layer, xs, attentions);
                for (int set = 0; set < rowCounts.length; set++) {
                    String what = rowCounts[set] + " rows, layer " + layer;
                    Qkv alone = djl.projectQkv(arena, layer, xs.get(set), positions.get(set));
                    assertArrayEquals(djl.download(alone.q()), djl.download(qkvs.get(set).q()), "q, " + what);
                    assertArrayEquals(djl.download(alone.k()), djl.download(qkvs.get(set).k()), "k, " + what);
                    assertArrayEquals(djl.download(alone.v()), djl.download(qkvs.get(set).v()), "v, " + what);
                    assertArrayEquals(djl.download(djl.finishLayer(arena, layer, xs.get(set), attentions.get(set))),
                            djl.download(nexts.get(set)), "finishLayer, " + what);
                }
            }
            List<float[]> logits = djl.logitsEach(xs);
            for (int set = 0; set < rowCounts.length; set++) {
                assertArrayEquals(djl.logits(xs.get(set)), logits.get(set), "logits, " + rowCounts[set] + " rows");
            }
        }
    }

    static Stream<Arguments> backends() {
        ModelConfig config = RandomModels.config(32, 2, 4, 2, 50);
        ModelWeights weights = RandomModels.weights(config, 3);
        return Stream.of(Arguments.of("reference", new ReferenceBackend(config, weights, KvPrecision.BF16)),
                Arguments.of("djl", new DjlBackend(config, weights, KvPrecision.BF16)));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void theInterfaceContractHolds(String name, Backend backend) {
        ModelConfig c = backend.config();
        long handlesBefore = backend.liveHandles();
        Tensor escaped;
        try (Arena arena = new Arena(); KvCache empty = backend.newKvCache(4)) {
            Tensor x = backend.embed(arena, new int[] {5, 6, 7});
            assertArrayEquals(new int[] {3, c.dim()}, x.shape());
            // shapes are checked at the boundary
            assertThrows(IllegalArgumentException.class, () -> backend.projectQkv(arena, 0, x, new int[] {0, 1}));
            assertThrows(IllegalArgumentException.class, () -> backend.embed(arena, new int[] {c.vocabSize()}));
            // attention over no key: zero output, lse -inf, no NaN
            Tensor q = backend.upload(arena, RandomModels.vector(new Random(1), 3 * c.queryWidth()), 3, c.heads(),
                    c.headDim());
            AttentionPartial none = backend.download(backend.attend(arena, q, new int[] {0, 1, 2}, empty, 0));
            assertArrayEquals(new float[3 * c.queryWidth()], none.output());
            for (float lse : none.lse()) {
                assertEquals(Float.NEGATIVE_INFINITY, lse);
            }
            // a tensor of another backend is refused
            Backend other = new ReferenceBackend(c, RandomModels.weights(c, 3), KvPrecision.BF16);
            Tensor foreign = other.embed(arena, new int[] {5, 6, 7});
            assertThrows(IllegalArgumentException.class, () -> backend.logits(foreign));
            escaped = x;
            assertTrue(backend.liveHandles() > handlesBefore);
        }
        // everything created in the arena (and the cache) is gone with it, and a closed tensor cannot be used
        assertEquals(handlesBefore, backend.liveHandles());
        assertThrows(IllegalStateException.class, () -> backend.logits(escaped));
        backend.close();
    }

    @Test
    void aTensorMovedToAnOuterArenaOutlivesTheInnerOne() {
        ModelConfig c = RandomModels.config(32, 1, 4, 2, 50);
        Backend backend = new ReferenceBackend(c, RandomModels.weights(c, 3), KvPrecision.BF16);
        try (Arena outer = new Arena()) {
            Tensor kept;
            try (Arena inner = new Arena()) {
                kept = inner.moveTo(outer, backend.embed(inner, new int[] {4}));
                backend.embed(inner, new int[] {4});
                assertEquals(2, backend.liveHandles());
            }
            assertTrue(kept.isOpen());
            assertEquals(1, backend.liveHandles());
        }
        assertEquals(0, backend.liveHandles());
    }

    private static void check(String op, float[] expected, float[] actual) {
        double diff = maxAbsDiff(expected, actual);
        assertTrue(diff <= TOLERANCE, op + " differs by " + diff);
    }
}
