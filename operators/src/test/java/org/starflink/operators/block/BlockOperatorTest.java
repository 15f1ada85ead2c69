package org.starflink.operators.block;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.apache.flink.api.common.serialization.SerializerConfigImpl;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.runtime.checkpoint.OperatorSubtaskState;
import org.apache.flink.runtime.state.KeyGroupRangeAssignment;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.streaming.util.KeyedTwoInputStreamOperatorTestHarness;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.starflink.engine.attention.AttentionPartial;
import org.starflink.engine.attention.LayerRequest;
import org.starflink.engine.backend.BackendKind;
import org.starflink.engine.checkpoint.ModelRegistry;
import org.starflink.engine.backend.KvCache;
import org.starflink.engine.forward.Transformer;
import org.starflink.engine.model.Model;
import org.starflink.engine.star.BlockAttention;
import org.starflink.engine.star.BlockLayout;
import org.starflink.engine.star.ContextBlock;
import org.starflink.engine.star.EncodedContext;
import org.starflink.engine.star.LongContextGenerator;
import org.starflink.engine.star.QueryHost;
import org.starflink.engine.testing.SharedModels;
import org.starflink.engine.wire.PhaseTwoCodec;
import org.starflink.operators.messages.BlockCommand;
import org.starflink.operators.messages.BlockRequest;
import org.starflink.operators.messages.HostMessage;
import org.starflink.operators.messages.BlockKeys;
import org.starflink.operators.model.ModelLocation;
import org.starflink.schemas.BlockEvent;
import org.starflink.schemas.BlockEventKind;

/** The block operator on the real stories260K model: phase 1, paged state, phase 2, retirement, restore. */
class BlockOperatorTest {
    private static final Duration GRACE = Duration.ofSeconds(10);
    private static Model model;
    private static Transformer transformer;
    private static int[] context;
    private static EncodedContext expected;
    private static final BlockLayout LAYOUT = new BlockLayout(48, 16);

    /** The job's default: the keys are the job's (a harness of one subtask places any key in its one group). */
    private static final int MAX_PARALLELISM = 128;

    private KeyedTwoInputStreamOperatorTestHarness<String, BlockCommand, BlockRequest, HostMessage> harness;
    private long barriers;

    @BeforeAll
    static void encodeWithTheEngine() {
        model = SharedModels.stories260K();
        transformer = new Transformer(ModelRegistry.backend(model, BackendKind.DJL));
        LongContextGenerator generator = new LongContextGenerator(model, transformer);
        context = generator.contextTokens("Lily had a big red ball. She liked to play with it in the sun. ".repeat(10));
        expected = generator.encode(context, LAYOUT);
    }

    @AfterEach
    void close() throws Exception {
        if (harness != null) {
            harness.close();
        }
    }

    static ModelLocation location() {
        return new ModelLocation(SharedModels.stories260KDir().resolve("stories260K.bin").toString(), null, "djl");
    }

    private static KeyedTwoInputStreamOperatorTestHarness<String, BlockCommand, BlockRequest, HostMessage>
            harness(OperatorSubtaskState restoreFrom) throws Exception {
        return harness(restoreFrom, null, true);
    }

    private static KeyedTwoInputStreamOperatorTestHarness<String, BlockCommand, BlockRequest, HostMessage>
            harness(OperatorSubtaskState restoreFrom, Duration idleTtl) throws Exception {
        return harness(restoreFrom, idleTtl, true);
    }

    private static KeyedTwoInputStreamOperatorTestHarness<String, BlockCommand, BlockRequest, HostMessage>
            harness(OperatorSubtaskState restoreFrom, Duration idleTtl, boolean widenedKv) throws Exception {
        return harness(restoreFrom, idleTtl, widenedKv, 1, 0);
    }

    /** Subtask {@code subtask} of a block operator at {@code parallelism} (max parallelism the job's). */
    private static KeyedTwoInputStreamOperatorTestHarness<String, BlockCommand, BlockRequest, HostMessage>
            harness(OperatorSubtaskState restoreFrom, Duration idleTtl, boolean widenedKv, int parallelism,
                    int subtask) throws Exception {
        var h = new KeyedTwoInputStreamOperatorTestHarness<>(
                new BlockOperatorRunner(new BlockOperator(location(), 16, GRACE, 1 << 20, widenedKv, idleTtl)),
                (BlockCommand c) -> c.blockKey(MAX_PARALLELISM), (BlockRequest r) -> r.blockKey, Types.STRING,
                MAX_PARALLELISM, parallelism, subtask);
        ((SerializerConfigImpl) h.getExecutionConfig().getSerializerConfig()).setGenericTypes(false);
        h.setup();
        if (restoreFrom != null) {
            h.initializeState(restoreFrom);
        }
        h.open();
        return h;
    }

    private static BlockCommand encodeBlock(String docId, int index) {
        ContextBlock block = LAYOUT.split(context).get(index);
        return BlockCommand.encode(docId, 1, index, block.start(), block.tokens(),
                index == 0 ? new int[0] : LAYOUT.anchor(context));
    }

    /** A layer request as a query host would send it after the context (one question token at position N). */
    private static LayerRequest request(int layer) {
        return request(layer, 42);
    }

    /** A real query host's request for {@code layer} of a pass over {@code tokens}. */
    private static LayerRequest request(int layer, int... tokens) {
        try (QueryHost host = new QueryHost(transformer, context.length, 4 + tokens.length)) {
            LayerRequest request = host.start(tokens);
            while (request.layer() < layer) {
                List<AttentionPartial> partials = new ArrayList<>();
                for (KvCache block : expected.blocks()) {
                    partials.add(BlockAttention.answer(transformer.backend(), request, block));
                }
                request = host.complete(partials);
            }
            return request;
        }
    }

    /** The host's request for one block, of a batch that went to blocks 0..block. */
    private static BlockRequest toBlock(String docId, int block, LayerRequest... batch) {
        return toBlock(docId, block, block + 1, 0, batch);
    }

    private static BlockRequest toBlock(String docId, int block, int blocks, long pass, LayerRequest... batch) {
        return new BlockRequest(BlockKeys.of(docId, 1, block, MAX_PARALLELISM), BlockKeys.documentVersion(docId, 1),
                block, blocks, pass, batch[0].layer(), PhaseTwoCodec.requestsToBytes(List.of(batch)));
    }

    /** What went out so far, after a checkpoint barrier's flush of the bundles still gathering. */
    private List<HostMessage> drain() throws Exception {
        harness.prepareSnapshotPreBarrier(++barriers);
        return drainWithoutFlush();
    }

    private List<HostMessage> drainWithoutFlush() {
        List<HostMessage> out = new ArrayList<>();
        for (Object record : harness.getOutput()) {
            out.add(((StreamRecord<HostMessage>) record).getValue());
        }
        harness.getOutput().clear();
        return out;
    }

    /** With and without the widened copies of the cached KV ({@code starflink.block.widened-kv}): the same bits. */
    @ParameterizedTest
    @ValueSource(booleans = {true, false})
    void aRequestBeforeTheBlockWaitsThenGetsTheEnginesExactPartial(boolean widenedKv) throws Exception {
        harness = harness(null, null, widenedKv);
        // A batch of two questions' rows (one decode row, one three-row prompt): one request, one message back.
        LayerRequest decode = request(2);
        LayerRequest prompt = request(2, 7, 11, 13);
        harness.processElement2(new StreamRecord<>(toBlock("d1", 1, decode, prompt)));
        assertTrue(drain().isEmpty(), "no answer before the block is encoded");
        assertEquals(1, harness.numKeyedStateEntries()); // the waiting request

        harness.processElement1(new StreamRecord<>(encodeBlock("d1", 1)));
        List<HostMessage> out = drain();
        assertEquals(1, out.size());
        List<AttentionPartial> actual = onlyBatch(out.get(0), 1);
        assertEquals(2, actual.size());
        // Each question's partial is bit for bit what it gets alone: batching changes no number.
        for (int i = 0; i < 2; i++) {
            AttentionPartial alone = BlockAttention.answer(transformer.backend(), i == 0 ? decode : prompt,
                    expected.blocks().get(1));
            assertArrayEquals(alone.output(), actual.get(i).output());
            assertArrayEquals(alone.lse(), actual.get(i).lse());
        }
        assertEquals(2, out.get(0).layer);
        assertEquals(BlockKeys.documentVersion("d1", 1), out.get(0).hostKey);
    }

    /** The blocks of document {@code docId} (all of {@link #LAYOUT}'s) that subtask 0 of two holds. */
    private static List<Integer> heldBySubtaskZeroOfTwo(String docId) {
        List<Integer> held = new ArrayList<>();
        for (int block = 0; block < LAYOUT.split(context).size(); block++) {
            if (KeyGroupRangeAssignment.assignKeyToParallelOperator(BlockKeys.of(docId, 1, block, MAX_PARALLELISM),
                    MAX_PARALLELISM, 2) == 0) {
                held.add(block);
            }
        }
        return held;
    }

    /**
     * At parallelism 2 a subtask's blocks answer a layer together: one message, sent when the last of them has
     * answered, with each block's own partial batch (bit for bit its answer alone) in block order, whatever order
     * the requests came in.
     */
    @Test
    void theBlocksOfOneSubtaskAnswerALayerInOneBundleInBlockOrder() throws Exception {
        harness = harness(null, null, true, 2, 0);
        int blocks = LAYOUT.split(context).size();
        List<Integer> held = heldBySubtaskZeroOfTwo("d8");
        assertTrue(held.size() >= 2 && held.size() < blocks, "placement gives this subtask some blocks: " + held);
        for (int block : held) {
            harness.processElement1(new StreamRecord<>(encodeBlock("d8", block)));
        }
        LayerRequest request = request(1);
        for (int i = held.size() - 1; i >= 0; i--) { // the last block first
            assertTrue(drainWithoutFlush().isEmpty(), "no bundle before the subtask's last block answered");
            harness.processElement2(new StreamRecord<>(toBlock("d8", held.get(i), blocks, 0, request)));
        }
        List<HostMessage> out = drainWithoutFlush();
        assertEquals(1, out.size());
        assertArrayEquals(held.stream().mapToInt(Integer::intValue).toArray(),
                PhaseTwoCodec.bundleBlocks(out.get(0).partials));
        List<List<AttentionPartial>> batches = PhaseTwoCodec.bundleFromBytes(out.get(0).partials).partials();
        for (int i = 0; i < held.size(); i++) {
            AttentionPartial alone = BlockAttention.answer(transformer.backend(), request,
                    expected.blocks().get(held.get(i)));
            AttentionPartial actual = batches.get(i).get(0);
            assertArrayEquals(alone.output(), actual.output());
            assertArrayEquals(alone.lse(), actual.lse());
        }
        assertEquals(1, out.get(0).layer);
    }

    /**
     * No answer waits in the heap across a checkpoint: a barrier sends what is gathered and the rest still
     * completes by count; after a restore (the count is lost) a bundle that stopped growing goes out on the sweep.
     */
    @Test
    void aBarrierSendsWhatIsGatheredAndARestoredBundleGoesOutWhenIdle() throws Exception {
        harness = harness(null, null, true, 2, 0);
        harness.setProcessingTime(0);
        int blocks = LAYOUT.split(context).size();
        List<Integer> held = heldBySubtaskZeroOfTwo("d9");
        for (int block : held) {
            harness.processElement1(new StreamRecord<>(encodeBlock("d9", block)));
        }
        LayerRequest request = request(0);
        harness.processElement2(new StreamRecord<>(toBlock("d9", held.get(0), blocks, 0, request)));
        harness.prepareSnapshotPreBarrier(1);
        assertArrayEquals(new int[] {held.get(0)}, PhaseTwoCodec.bundleBlocks(drainWithoutFlush().get(0).partials));
        OperatorSubtaskState snapshot = harness.snapshot(1, 1);
        for (int i = 1; i < held.size(); i++) {
            harness.processElement2(new StreamRecord<>(toBlock("d9", held.get(i), blocks, 0, request)));
        }
        List<HostMessage> rest = drainWithoutFlush();
        assertEquals(1, rest.size(), "the rest completes the bundle by count, after the barrier");
        assertEquals(held.subList(1, held.size()),
                Arrays.stream(PhaseTwoCodec.bundleBlocks(rest.get(0).partials)).boxed().toList());

        harness.close(); // fail over to the checkpoint: the loop replays the requests after it
        harness = harness(snapshot, null, true, 2, 0);
        harness.setProcessingTime(1_000);
        for (int i = 1; i < held.size(); i++) {
            harness.processElement2(new StreamRecord<>(toBlock("d9", held.get(i), blocks, 0, request)));
        }
        assertTrue(drainWithoutFlush().isEmpty(), "the restored bundle waits for a count it cannot reach");
        harness.setProcessingTime(1_000 + 2 * BlockOperatorRunner.SWEEP_MS);
        List<HostMessage> swept = drainWithoutFlush();
        assertEquals(1, swept.size());
        assertEquals(held.subList(1, held.size()),
                Arrays.stream(PhaseTwoCodec.bundleBlocks(swept.get(0).partials)).boxed().toList());
    }

    /** The partial batch of a bundle that holds block {@code block} only. */
    private static List<AttentionPartial> onlyBatch(HostMessage bundle, int block) {
        assertArrayEquals(new int[] {block}, PhaseTwoCodec.bundleBlocks(bundle.partials));
        return PhaseTwoCodec.bundleFromBytes(bundle.partials).partials().get(0);
    }

    /** The block events the operator emitted so far, as "KIND key" in order (and forgets them). */
    private List<String> drainEvents() {
        List<String> events = new ArrayList<>();
        var output = harness.getSideOutput(BlockOperator.BLOCK_EVENTS);
        if (output != null) {
            for (StreamRecord<BlockEvent> record : output) {
                events.add(record.getValue().getKind() + " " + record.getValue().getBlockKey());
            }
            output.clear();
        }
        return events;
    }

    @Test
    void aRestoredBlockAnswersFromItsPagesWithoutReencoding() throws Exception {
        harness = harness(null);
        harness.processElement1(new StreamRecord<>(encodeBlock("d2", 2)));
        String key = BlockKeys.of("d2", 1, 2, MAX_PARALLELISM);
        assertEquals(List.of("ENCODED " + key), drainEvents());
        OperatorSubtaskState snapshot = harness.snapshot(1, 1);
        harness.close();

        harness = harness(snapshot);
        harness.processElement1(new StreamRecord<>(encodeBlock("d2", 2))); // a replayed command: ignored
        LayerRequest request = request(4);
        harness.processElement2(new StreamRecord<>(toBlock("d2", 2, request)));
        AttentionPartial actual = onlyBatch(drain().get(0), 2).get(0);
        AttentionPartial expectedPartial = BlockAttention.answer(transformer.backend(), request,
                expected.blocks().get(2));
        assertArrayEquals(expectedPartial.output(), actual.output());
        assertEquals(List.of("SKIPPED " + key), drainEvents(), "restored block was encoded again");
    }

    /** Every encode, skipped encode and retirement is one event with the block's identity and phase-1 figures. */
    @Test
    void blockEventsSayWhatPhaseOneDidForEachBlock() throws Exception {
        harness = harness(null);
        harness.setProcessingTime(1_000);
        ContextBlock block = LAYOUT.split(context).get(1);
        harness.processElement1(new StreamRecord<>(encodeBlock("d@4#x", 1))); // a doc_id with the separators in it
        harness.processElement1(new StreamRecord<>(encodeBlock("d@4#x", 1))); // a replay: state has it
        harness.processElement1(new StreamRecord<>(BlockCommand.drop("d@4#x", 1, 1)));
        harness.setProcessingTime(1_000 + GRACE.toMillis() + 1);
        var output = harness.getSideOutput(BlockOperator.BLOCK_EVENTS);
        List<BlockEvent> events = output.stream().map(StreamRecord::getValue).toList();
        assertEquals(List.of(BlockEventKind.ENCODED, BlockEventKind.SKIPPED, BlockEventKind.RETIRED),
                events.stream().map(BlockEvent::getKind).toList());
        for (BlockEvent event : events) {
            assertEquals(BlockKeys.of("d@4#x", 1, 1, MAX_PARALLELISM), event.getBlockKey());
            assertEquals("d@4#x", event.getDocId());
            assertEquals(1L, event.getVersion());
            assertEquals(1, event.getBlock());
            assertEquals(0, event.getSubtask());
            assertEquals(0, event.getAttempt());
        }
        assertEquals(block.tokens().length, events.get(0).getTokens());
        assertEquals(block.tokens().length, events.get(1).getTokens());
        assertEquals(0, events.get(2).getTokens());
        assertEquals(0, events.get(1).getPhase1Ms());
        assertEquals(1, harness.numKeyedStateEntries(), "the KV is gone, the tombstone stays one more grace period");
        harness.setProcessingTime(1_000 + 2 * GRACE.toMillis() + 1);
        assertEquals(0, harness.numKeyedStateEntries());
    }

    @Test
    void aDroppedBlockServesRunningQuestionsThenItsStateGoesToZero() throws Exception {
        harness = harness(null);
        harness.setProcessingTime(1_000);
        harness.processElement1(new StreamRecord<>(encodeBlock("d3", 0)));
        assertTrue(harness.numKeyedStateEntries() > 1);
        harness.processElement1(new StreamRecord<>(BlockCommand.drop("d3", 1, 0)));

        harness.setProcessingTime(1_000 + GRACE.toMillis() - 1);
        harness.processElement2(new StreamRecord<>(toBlock("d3", 0, request(0)))); // still readable, and in use
        assertEquals(1, drain().size());
        harness.setProcessingTime(1_000 + GRACE.toMillis() + 1); // the first timer fires: used since, so it waits
        assertTrue(harness.numKeyedStateEntries() > 0);

        harness.setProcessingTime(1_000 + 2 * GRACE.toMillis() + GRACE.toMillis() / 2);
        assertEquals(1, harness.numKeyedStateEntries(), "a retired block keeps its tombstone only");
        harness.setProcessingTime(1_000 + 4 * GRACE.toMillis());
        assertEquals(0, harness.numKeyedStateEntries(), "a retired block must leave no state behind");
    }

    @Test
    void aBlockNobodyAsksAboutExpiresAfterTheIdleTtl() throws Exception {
        harness = harness(null, Duration.ofMinutes(1));
        harness.setProcessingTime(0);
        harness.processElement1(new StreamRecord<>(encodeBlock("d5", 1)));
        harness.setProcessingTime(50_000);
        harness.processElement2(new StreamRecord<>(toBlock("d5", 1, request(1)))); // in use: the TTL restarts
        harness.setProcessingTime(70_000);
        assertTrue(harness.numKeyedStateEntries() > 0, "expired although used 20 s ago");
        harness.setProcessingTime(111_000);
        assertEquals(1, harness.numKeyedStateEntries(), "an idle block's KV must expire (its tombstone stays)");
        harness.setProcessingTime(172_000);
        assertEquals(0, harness.numKeyedStateEntries(), "an idle block must leave no state behind");
    }

    @Test
    void aRequestForAnExpiredBlockIsAnsweredWithWhyAndTheKeyCanBeEncodedAgain() throws Exception {
        harness = harness(null, Duration.ofMinutes(1));
        harness.setProcessingTime(0);
        harness.processElement1(new StreamRecord<>(encodeBlock("d7", 1)));
        harness.setProcessingTime(61_000); // expired: a question admitted before, held at the loop's cap, asks now
        harness.processElement2(new StreamRecord<>(toBlock("d7", 1, request(2))));
        List<HostMessage> replies = drain();
        assertEquals(1, replies.size(), "a request for an expired block must not wait for an encoding");
        HostMessage gone = replies.get(0);
        assertEquals("unused for starflink.document.state-ttl (PT1M), its KV expired", gone.blockGone);
        assertEquals(BlockKeys.documentVersion("d7", 1), gone.hostKey);
        assertEquals(1, gone.block);
        assertEquals(2, gone.layer);
        assertNull(gone.partials);

        harness.processElement1(new StreamRecord<>(encodeBlock("d7", 1))); // the document came back
        harness.processElement2(new StreamRecord<>(toBlock("d7", 1, request(2))));
        HostMessage answer = drain().get(0);
        assertNull(answer.blockGone);
        assertEquals(1, onlyBatch(answer, 1).size());
    }

    @Test
    void aTouchFromAnAdmittedQuestionRestartsTheIdleTtl() throws Exception {
        harness = harness(null, Duration.ofMinutes(1));
        harness.setProcessingTime(0);
        harness.processElement1(new StreamRecord<>(encodeBlock("d6", 1)));
        harness.setProcessingTime(50_000);
        harness.processElement1(new StreamRecord<>(BlockCommand.touch("d6", 1, 1))); // admitted, waits at the cap
        harness.setProcessingTime(100_000);
        assertTrue(harness.numKeyedStateEntries() > 0, "expired 50 s after a question was admitted over it");
        harness.processElement2(new StreamRecord<>(toBlock("d6", 1, request(1))));
        assertEquals(1, drain().size(), "the late question's request is answered");
        harness.setProcessingTime(161_000);
        assertEquals(1, harness.numKeyedStateEntries(), "an idle block must expire (its tombstone stays)");
    }
}
