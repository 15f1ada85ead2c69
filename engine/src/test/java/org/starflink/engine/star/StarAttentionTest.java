package org.starflink.engine.star;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.starflink.engine.testing.RandomModels.maxAbsDiff;

import java.io.IOException;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.stream.IntStream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.starflink.engine.backend.Backend;
import org.starflink.engine.backend.BackendKind;
import org.starflink.engine.checkpoint.ModelRegistry;
import org.starflink.engine.backend.KvCache;
import org.starflink.engine.backend.KvPrecision;
import org.starflink.engine.forward.Transformer;
import org.starflink.engine.generate.GenerationResult;
import org.starflink.engine.generate.FirstLogitsSession;
import org.starflink.engine.generate.Generator;
import org.starflink.engine.generate.GlobalSession;
import org.starflink.engine.generate.SamplingParams;
import org.starflink.engine.model.Model;
import org.starflink.engine.testing.KvTesting;
import org.starflink.engine.testing.SharedModels;

/**
 * Star Attention's exactness properties on the real stories260K model, with float32 KV (the math) and with
 * BF16 KV (what the job stores): the same computation must round to the same BF16 values.
 */
class StarAttentionTest {
    /**
     * Same math, different float32 grouping: libtorch picks its matmul kernel blocking by row count, so one
     * 128-row pass and five smaller ones round differently (seen: 1.1e-5 on keys of magnitude ~5 after 5 layers).
     */
    private static final double KV_TOLERANCE = 1e-4;
    private static Model model;
    private static Transformer f32;
    private static Transformer bf16;
    private static Transformer transformer;
    private static LongContextGenerator star;
    private static int[] context;
    private static int[] question;

    @BeforeAll
    static void load() throws IOException {
        model = SharedModels.stories260K();
        f32 = new Transformer(ModelRegistry.backend(model, BackendKind.DJL, KvPrecision.F32));
        bf16 = new Transformer(ModelRegistry.backend(model, BackendKind.DJL, KvPrecision.BF16));
        use(KvPrecision.F32);
        String story = Files.readString(SharedModels.stories260KDir().resolve("reference/greedy_t0_256steps_runc.txt"));
        context = star.contextTokens(story + " " + story); // ~500 tokens
        question = star.questionTokens("Lily said, \"");
    }

    /** Runs what follows with KV caches of {@code precision}. */
    private static void use(KvPrecision precision) {
        transformer = precision == KvPrecision.F32 ? f32 : bf16;
        star = new LongContextGenerator(model, transformer);
    }

    /** Global decoding of context + question, the plain way: one KV cache. */
    private static GlobalRun global(int maxNewTokens) {
        GlobalSession session = new GlobalSession(transformer, context.length + 64);
        session.feed(context);
        FirstLogitsSession capturing = new FirstLogitsSession(session);
        GenerationResult result = generator().generate(capturing, question, SamplingParams.greedy(maxNewTokens),
                t -> { });
        return new GlobalRun(result, capturing.firstLogits());
    }

    private record GlobalRun(GenerationResult result, float[] firstLogits) {
    }

    private static Generator generator() {
        return new Generator(model.tokenizer(), model.config().eosIds());
    }

    private static GlobalRun phase2(List<KvCache> blocks, int maxNewTokens) {
        StarSession session = new StarSession(new QueryHost(transformer, context.length, 64),
                transformer.backend(), blocks);
        FirstLogitsSession capturing = new FirstLogitsSession(session);
        GenerationResult result = generator().generate(capturing, question, SamplingParams.greedy(maxNewTokens),
                t -> { });
        return new GlobalRun(result, capturing.firstLogits());
    }

    @ParameterizedTest
    @EnumSource(KvPrecision.class)
    void starWithOneBlockEqualsGlobal(KvPrecision precision) {
        use(precision);
        GlobalRun global = global(24);
        EncodedContext oneBlock = star.encode(context, BlockLayout.global(context.length));
        assertEquals(1, oneBlock.blocks().size());
        GlobalRun starRun = phase2(oneBlock.blocks(), 24);
        assertArrayEquals(global.result().tokens(), starRun.result().tokens());
        double diff = maxAbsDiff(global.firstLogits(), starRun.firstLogits());
        assertTrue(diff <= 1e-4, "logits differ by " + diff);
    }

    @ParameterizedTest
    @EnumSource(KvPrecision.class)
    void phase2OverGlobalPrefillKvEqualsPlainDecoding(KvPrecision precision) {
        use(precision);
        GlobalRun global = global(24);
        KvCache prefill = transformer.backend().newKvCache(context.length);
        transformer.forward(context, Transformer.range(0, context.length), List.of(), prefill, false);
        // The global KV split into uneven pieces, handed to phase 2 as if they were blocks, in shuffled order.
        int[] cuts = {0, 37, 38, 200, 411, context.length};
        List<KvCache> pieces = new ArrayList<>();
        for (int i = 0; i + 1 < cuts.length; i++) {
            pieces.add(KvTesting.copyRange(transformer.backend(), prefill, cuts[i], cuts[i + 1]));
        }
        java.util.Collections.shuffle(pieces, new Random(3));
        GlobalRun starRun = phase2(pieces, 24);
        assertArrayEquals(global.result().tokens(), starRun.result().tokens());
        double diff = maxAbsDiff(global.firstLogits(), starRun.firstLogits());
        assertTrue(diff <= 1e-4, "logits differ by " + diff);
    }

    /** The KV identity itself, so float32 KV: under BF16 both sides round the same math differently. */
    @Test
    void incrementalExtensionEqualsOneShotEncoding() {
        use(KvPrecision.F32);
        BlockLayout layout = new BlockLayout(128, 64);
        BlockEncoder encoder = new BlockEncoder(transformer);
        KvCache anchor = encoder.encodeAnchor(layout.anchor(context));
        ContextBlock block = layout.split(context).get(2);
        KvCache oneShot = encoder.encode(block, anchor);

        KvCache extended = transformer.backend().newKvCache(1);
        int[] chunkSizes = {1, 5, 50, 2, 70};
        int done = 0;
        for (int size : chunkSizes) {
            int[] chunk = Arrays.copyOfRange(block.tokens(), done, done + size);
            encoder.extend(extended, anchor, chunk, block.start() + done);
            done += size;
        }
        assertEquals(block.tokens().length, done);
        assertKvClose(oneShot, extended, KV_TOLERANCE);
    }

    /** The KV identity itself, so float32 KV: under BF16 both sides round the same math differently. */
    @Test
    void anchorReuseEqualsReencodingTheAnchorWithEveryBlock() {
        use(KvPrecision.F32);
        BlockLayout layout = new BlockLayout(100, 40);
        BlockEncoder encoder = new BlockEncoder(transformer);
        int[] anchorTokens = layout.anchor(context);
        KvCache anchor = encoder.encodeAnchor(anchorTokens);
        for (ContextBlock block : layout.split(context).subList(1, 4)) {
            // The reference's way: encode [anchor; block] in one causal pass, drop the anchor's KV.
            int[] tokens = IntStream.concat(IntStream.of(anchorTokens), IntStream.of(block.tokens())).toArray();
            int[] positions = IntStream.concat(IntStream.range(0, anchorTokens.length),
                    IntStream.range(block.start(), block.start() + block.tokens().length)).toArray();
            KvCache augmented = transformer.backend().newKvCache(tokens.length);
            transformer.forward(tokens, positions, List.of(), augmented, false);
            KvCache reencoded = KvTesting.copyRange(transformer.backend(), augmented, anchorTokens.length,
                    tokens.length);
            assertKvClose(reencoded, encoder.encode(block, anchor), KV_TOLERANCE);
        }
    }

    @Test
    void starDiffersFromGlobalWhenTheContextSpansSeveralBlocks() {
        use(KvPrecision.BF16);
        GlobalRun global = global(8);
        EncodedContext blocks = star.encode(context, BlockLayout.of(128));
        assertEquals((context.length + 127) / 128, blocks.blocks().size());
        GlobalRun starRun = phase2(blocks.blocks(), 8);
        double diff = maxAbsDiff(global.firstLogits(), starRun.firstLogits());
        // The approximation is real: blocks past the first never saw the context between the anchor and them.
        assertTrue(diff > 1e-2, "Star should differ from global, max |logit diff| " + diff);
    }

    /**
     * Keys and values equal within {@code tolerance} plus, for BF16, one BF16 step of the larger value (at most
     * 2^-7 relative: 8 significant bits): float32 results that differ in the last bits can round to neighbouring BF16 values.
     */
    private static void assertKvClose(KvCache expected, KvCache actual, double tolerance) {
        assertEquals(expected.length(), actual.length());
        double relative = expected.precision() == KvPrecision.BF16 ? 0x1p-7 : 0;
        for (int layer = 0; layer < expected.layers(); layer++) {
            assertArrayEquals(expected.positions(layer, 0, expected.length(layer)),
                    actual.positions(layer, 0, actual.length(layer)));
            assertClose("layer " + layer + " keys", KvTesting.keys(expected, layer), KvTesting.keys(actual, layer),
                    tolerance, relative);
            assertClose("layer " + layer + " values", KvTesting.values(expected, layer),
                    KvTesting.values(actual, layer), tolerance, relative);
        }
    }

    private static void assertClose(String what, float[] expected, float[] actual, double tolerance,
                                    double relative) {
        assertEquals(expected.length, actual.length, what);
        for (int i = 0; i < expected.length; i++) {
            double bound = tolerance + relative * Math.max(Math.abs(expected[i]), Math.abs(actual[i]));
            if (Math.abs(expected[i] - actual[i]) > bound) {
                throw new AssertionError(what + " differ at " + i + ": " + expected[i] + " vs " + actual[i]);
            }
        }
    }
}
