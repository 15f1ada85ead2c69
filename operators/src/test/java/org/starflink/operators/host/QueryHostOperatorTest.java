package org.starflink.operators.host;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.List;
import java.util.Random;
import org.apache.flink.api.common.serialization.SerializerConfigImpl;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.runtime.checkpoint.OperatorSubtaskState;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.streaming.util.KeyedOneInputStreamOperatorTestHarness;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.starflink.engine.attention.AttentionPartial;
import org.starflink.engine.backend.BackendKind;
import org.starflink.engine.checkpoint.ModelRegistry;
import org.starflink.engine.forward.Transformer;
import org.starflink.engine.generate.SamplingParams;
import org.starflink.engine.model.Model;
import org.starflink.engine.star.BlockAttention;
import org.starflink.engine.star.BlockLayout;
import org.starflink.engine.star.EncodedContext;
import org.starflink.engine.star.LongContextGenerator;
import org.starflink.engine.testing.SharedModels;
import org.starflink.engine.wire.PhaseTwoCodec;
import org.starflink.operators.messages.BlockRequest;
import org.starflink.operators.messages.HostMessage;
import org.starflink.operators.messages.QuestionTask;
import org.starflink.operators.model.ModelLocation;
import org.starflink.schemas.AnswerToken;
import org.starflink.schemas.FinishReason;

/**
 * The query host driven by hand: the test plays the blocks (real partials, delivered in shuffled order) and the
 * loop. Its answer equals the engine's single-process Star answer, and its state is empty once it is done.
 */
class QueryHostOperatorTest {
    private static final BlockLayout LAYOUT = new BlockLayout(40, 20);
    private static final int MAX_NEW_TOKENS = 10;
    private static Model model;
    private static Transformer transformer;
    private static LongContextGenerator generator;
    private static int[] context;
    private static EncodedContext encoded;

    private KeyedOneInputStreamOperatorTestHarness<String, HostMessage, BlockRequest> harness;
    private final List<AnswerToken> answers = new ArrayList<>();
    private int exits;
    private int requestsSeen;

    @BeforeAll
    static void encode() {
        model = SharedModels.stories260K();
        transformer = new Transformer(ModelRegistry.backend(model, BackendKind.DJL));
        generator = new LongContextGenerator(model, transformer);
        context = generator.contextTokens("Tom saw a big dog in the park. The dog was happy and ran fast. ".repeat(3));
        encoded = generator.encode(context, LAYOUT);
    }

    @AfterEach
    void close() throws Exception {
        if (harness != null) {
            harness.close();
        }
    }

    private KeyedOneInputStreamOperatorTestHarness<String, HostMessage, BlockRequest> harness(
            OperatorSubtaskState restoreFrom) throws Exception {
        ModelLocation location = new ModelLocation(
                SharedModels.stories260KDir().resolve("stories260K.bin").toString(), null, "djl");
        var h = new KeyedOneInputStreamOperatorTestHarness<>(
                new QueryHostOperatorRunner(new QueryHostOperator(location, 128)), (HostMessage m) -> m.hostKey,
                Types.STRING);
        ((SerializerConfigImpl) h.getExecutionConfig().getSerializerConfig()).setGenericTypes(false);
        h.setup();
        if (restoreFrom != null) {
            h.initializeState(restoreFrom);
        }
        h.open();
        return h;
    }

    private static QuestionTask task(String id, String question) {
        QuestionTask task = new QuestionTask();
        task.questionId = id;
        task.docId = "doc";
        task.version = 1;
        task.text = question;
        task.tokens = generator.questionTokens(question); // as the document operator tokenizes it
        task.maxNewTokens = MAX_NEW_TOKENS;
        task.topP = 1f;
        task.stop = new String[0];
        task.contextLength = context.length;
        task.blockCount = encoded.blocks().size();
        task.receivedMs = System.currentTimeMillis();
        return task;
    }

    /**
     * Moves the harness's requests to the "blocks" and their partials back until nothing is left: each layer's
     * answers in bundles of random blocks (as subtasks holding random blocks would send them), shuffled.
     */
    private void playBlocks(Random random, Runnable betweenLayers) throws Exception {
        playBlocks(random, betweenLayers, () -> { });
    }

    /** As above, running {@code midLayer} after every bundle but a layer's last. */
    private void playBlocks(Random random, Runnable betweenLayers, Runnable midLayer) throws Exception {
        while (true) {
            List<BlockRequest> requests = new ArrayList<>();
            collectOutputs(requests);
            if (requests.isEmpty()) {
                return;
            }
            requestsSeen += requests.size();
            Collections.shuffle(requests, random);
            List<HostMessage> bundles = new ArrayList<>();
            for (int from = 0; from < requests.size(); ) {
                int to = Math.min(requests.size(), from + 1 + random.nextInt(4));
                bundles.add(answer(requests.subList(from, to)));
                from = to;
            }
            Collections.shuffle(bundles, random);
            for (int i = 0; i < bundles.size(); i++) {
                harness.processElement(new StreamRecord<>(bundles.get(i)));
                if (i < bundles.size() - 1) {
                    midLayer.run();
                }
            }
            betweenLayers.run();
        }
    }

    /** What the block operator answers: each request of the batch alone, one message back. */
    private static HostMessage answer(BlockRequest request) {
        return answer(List.of(request));
    }

    /** What one block subtask answers for its blocks' requests (one layer): their batches in one bundle. */
    private static HostMessage answer(List<BlockRequest> sameLayer) {
        List<BlockRequest> inBlockOrder = new ArrayList<>(sameLayer);
        inBlockOrder.sort(Comparator.comparingInt(r -> r.block));
        List<List<AttentionPartial>> batches = new ArrayList<>();
        for (BlockRequest request : inBlockOrder) {
            batches.add(BlockAttention.answerEach(transformer.backend(),
                    PhaseTwoCodec.requestsFromBytes(request.requests), encoded.blocks().get(request.block)));
        }
        BlockRequest any = inBlockOrder.get(0);
        return HostMessage.partials(any.hostKey, any.pass, any.layer, PhaseTwoCodec.bundleToBytes(
                inBlockOrder.stream().mapToInt(r -> r.block).toArray(), batches));
    }

    /** Snapshot, throw the operator away, restore it; the requests in flight stay in flight. */
    private void restartFromASnapshot(long checkpointId) {
        try {
            List<BlockRequest> pending = new ArrayList<>();
            collectOutputs(pending);
            harness.prepareSnapshotPreBarrier(checkpointId); // as the task does before a barrier goes out
            OperatorSubtaskState snapshot = harness.snapshot(checkpointId, checkpointId);
            harness.close();
            harness = harness(snapshot);
            pending.forEach(r -> harness.getOutput().add(new StreamRecord<>(r)));
        } catch (Exception e) {
            throw new RuntimeException(e);
        }
    }

    private void collectOutputs(List<BlockRequest> requests) {
        for (Object record : harness.getOutput()) {
            requests.add(((StreamRecord<BlockRequest>) record).getValue());
        }
        harness.getOutput().clear();
        var answerRecords = harness.getSideOutput(QueryHostOperator.ANSWERS); // null until the first one
        if (answerRecords != null) {
            answerRecords.forEach(r -> answers.add(r.getValue()));
            answerRecords.clear();
        }
        var exitRecords = harness.getSideOutput(QueryHostOperator.EXITS);
        if (exitRecords != null) {
            exits += exitRecords.size();
            exitRecords.clear();
        }
    }

    private List<Integer> expectedTokens(String question) {
        return expectedTokens(question, context);
    }

    /** The engine's single-process Star answer over {@code contextTokens}. */
    private static List<Integer> expectedTokens(String question, int[] contextTokens) {
        List<Integer> tokens = new ArrayList<>();
        for (int t : generator.generate(contextTokens, generator.questionTokens(question), LAYOUT,
                SamplingParams.greedy(MAX_NEW_TOKENS), false, x -> { }).tokens()) {
            tokens.add(t);
        }
        return tokens;
    }

    private List<Integer> tokensOf(String questionId) {
        return answers.stream().filter(a -> a.getQuestionId().equals(questionId)).map(AnswerToken::getTokenId)
                .toList();
    }

    @Test
    void answersLikeTheEngineAndLeavesNoState() throws Exception {
        harness = harness(null);
        harness.processElement(new StreamRecord<>(HostMessage.question(task("q1", "Tom said"))));
        playBlocks(new Random(1), () -> { });
        collectOutputs(new ArrayList<>());

        assertEquals(expectedTokens("Tom said"), answers.stream().map(AnswerToken::getTokenId).toList());
        for (int i = 0; i < answers.size(); i++) {
            assertEquals(i, answers.get(i).getIndex());
        }
        AnswerToken last = answers.get(answers.size() - 1);
        assertTrue(last.getFinal$());
        assertEquals(FinishReason.LENGTH, last.getFinishReason());
        assertEquals(1, exits);
        assertEquals(0, harness.numKeyedStateEntries(), "a finished question must leave no state behind");
    }

    @Test
    void aHostRestoredBetweenLayersContinuesExactly() throws Exception {
        harness = harness(null);
        harness.processElement(new StreamRecord<>(HostMessage.question(task("q2", "The dog"))));
        int[] layersSeen = {0};
        playBlocks(new Random(2), () -> {
            if (++layersSeen[0] % 7 == 0) { // now and then: snapshot, throw the operator away, restore
                restartFromASnapshot(layersSeen[0]);
            }
        });
        collectOutputs(new ArrayList<>());
        assertEquals(expectedTokens("The dog"), answers.stream().map(AnswerToken::getTokenId).toList());
        assertEquals(0, harness.numKeyedStateEntries());
    }

    /**
     * Restored between two bundles of one layer: the bundles the host had gathered (in its heap) went into the
     * checkpoint before the barrier, so the layer completes with the ones that arrive after the restore.
     */
    @Test
    void aHostRestoredMidLayerKeepsWhatTheLayerHadGathered() throws Exception {
        harness = harness(null);
        harness.processElement(new StreamRecord<>(HostMessage.question(task("q4", "The dog"))));
        int[] restarts = {0};
        playBlocks(new Random(4), () -> { }, () -> restartFromASnapshot(++restarts[0]));
        collectOutputs(new ArrayList<>());
        assertEquals(expectedTokens("The dog"), answers.stream().map(AnswerToken::getTokenId).toList());
        assertTrue(restarts[0] >= 5, "few layers came in more than one bundle: " + restarts[0]);
        assertEquals(0, harness.numKeyedStateEntries());
    }

    @Test
    void staleAndDuplicatePartialsAreIgnoredAndADuplicateQuestionIdGetsAnError() throws Exception {
        harness = harness(null);
        harness.processElement(new StreamRecord<>(HostMessage.question(task("q3", "Tom said"))));
        List<BlockRequest> requests = new ArrayList<>();
        collectOutputs(requests);
        BlockRequest first = requests.get(0);
        byte[] bytes = answer(first).partials;
        String host = first.hostKey;
        harness.processElement(new StreamRecord<>(HostMessage.partials(host, 0, 3, bytes))); // stale
        harness.processElement(new StreamRecord<>(HostMessage.partials(host, 0, 0, bytes)));
        harness.processElement(new StreamRecord<>(HostMessage.partials(host, 0, 0, bytes))); // dup
        collectOutputs(requests);
        assertEquals(encoded.blocks().size(), requests.size(), "no layer may complete on partial or stale input");

        harness.processElement(new StreamRecord<>(HostMessage.question(task("q3", "again"))));
        collectOutputs(new ArrayList<>());
        assertEquals(1, answers.size());
        assertEquals(FinishReason.ERROR, answers.get(0).getFinishReason());
        assertEquals(1, exits);
    }

    /**
     * A block that answers that its KV is gone (expired while the questions waited at the loop's cap) ends every
     * question of the document version, running or waiting, with that reason, and the host keeps nothing.
     */
    @Test
    void aGoneBlockEndsTheBatchWithItsReasonAndLeavesNoState() throws Exception {
        harness = harness(null);
        harness.processElement(new StreamRecord<>(HostMessage.question(task("q5", "Tom said"))));
        List<BlockRequest> requests = new ArrayList<>();
        collectOutputs(requests);
        harness.processElement(new StreamRecord<>(HostMessage.question(task("q6", "The dog")))); // waits
        BlockRequest last = requests.get(0);
        harness.processElement(new StreamRecord<>(answer(requests.get(1)))); // another block answers normally
        harness.processElement(new StreamRecord<>(HostMessage.blockGone(last.hostKey, last.block, last.pass,
                last.layer, "unused for starflink.document.state-ttl (PT1M), its KV expired")));
        for (BlockRequest request : requests.subList(2, requests.size())) {
            harness.processElement(new StreamRecord<>(answer(request))); // arrive after the end: stale
        }
        List<BlockRequest> after = new ArrayList<>();
        collectOutputs(after);
        assertEquals(List.of(), after, "nothing is sent for a batch that ended");
        assertEquals(List.of("q5", "q6"), answers.stream().map(AnswerToken::getQuestionId).toList());
        for (AnswerToken answer : answers) {
            assertTrue(answer.getFinal$());
            assertEquals(FinishReason.ERROR, answer.getFinishReason());
            assertEquals("block " + last.block + " of doc@1 is gone: unused for starflink.document.state-ttl (PT1M), "
                    + "its KV expired; ask again", answer.getError());
        }
        assertEquals(2, exits);
        assertEquals(0, harness.numKeyedStateEntries(), "an ended batch must leave no state behind");
    }

    /**
     * Three questions on one document: two at once, one while they are generating (it joins at their next pass), one
     * of them admitted while the document had fewer blocks. Each layer sends one request per block for all of them,
     * and each answer equals the engine's answer alone, also across a snapshot and restore mid-batch.
     */
    @Test
    void questionsOnOneDocumentShareEachLayersRequestsAndAnswerAsIfAlone() throws Exception {
        harness = harness(null);
        QuestionTask early = task("early", "The dog");
        early.blockCount = 2; // admitted while the document had two blocks
        var second = LAYOUT.split(context).get(1);
        early.contextLength = second.start() + second.tokens().length;
        harness.processElement(new StreamRecord<>(HostMessage.question(task("a", "Tom said"))));
        harness.processElement(new StreamRecord<>(HostMessage.question(early)));
        int[] laps = {0};
        playBlocks(new Random(3), () -> {
            try {
                if (++laps[0] == 3) { // mid-pass: joins at the pass's end
                    harness.processElement(new StreamRecord<>(HostMessage.question(task("late", "Tom saw"))));
                }
                if (laps[0] == 12) { // mid-batch
                    restartFromASnapshot(1);
                }
            } catch (Exception e) {
                throw new RuntimeException(e);
            }
        });
        collectOutputs(new ArrayList<>());

        assertEquals(expectedTokens("Tom said"), tokensOf("a"));
        assertEquals(expectedTokens("Tom saw"), tokensOf("late"));
        assertEquals(expectedTokens("The dog", Arrays.copyOf(context, early.contextLength)), tokensOf("early"));
        assertEquals(3, exits);
        assertEquals(0, harness.numKeyedStateEntries(), "finished questions must leave no state behind");
        // Passes: "a" and "early" together (10 tokens each), "late" from a's second pass on (10 more passes).
        // Every pass costs layers x blocks requests, whatever the number of questions in it.
        int layers = model.config().layers();
        int passes = MAX_NEW_TOKENS + 1;
        assertEquals(passes * layers * encoded.blocks().size(), requestsSeen,
                "one request per block and layer for the whole batch");
    }
}
