package org.starflink.operators.document;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import java.util.stream.IntStream;
import org.apache.flink.api.common.serialization.SerializerConfigImpl;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.typeutils.PojoTypeInfo;
import org.apache.flink.runtime.checkpoint.OperatorSubtaskState;
import org.apache.flink.streaming.api.operators.co.KeyedCoProcessOperator;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.streaming.util.KeyedTwoInputStreamOperatorTestHarness;
import org.apache.flink.util.InstantiationUtil;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.starflink.engine.backend.BackendKind;
import org.starflink.engine.checkpoint.ModelRegistry;
import org.starflink.engine.forward.Transformer;
import org.starflink.engine.generate.SamplingParams;
import org.starflink.engine.model.Model;
import org.starflink.engine.star.BlockLayout;
import org.starflink.engine.star.LongContextGenerator;
import org.starflink.engine.testing.SharedModels;
import org.starflink.operators.messages.BlockCommand;
import org.starflink.operators.messages.QuestionTask;
import org.starflink.operators.model.ModelLocation;
import org.starflink.schemas.AnswerToken;
import org.starflink.schemas.Coverage;
import org.starflink.schemas.DocumentChunk;
import org.starflink.schemas.DocumentDelete;
import org.starflink.schemas.DocumentEvent;
import org.starflink.schemas.FinishReason;
import org.starflink.schemas.Question;

/**
 * The document operator in Flink's keyed two-input harness, with the real stories260K model and tokenizer
 * (llama2.c tok512, BOS = 1, window 512). Generic types are disabled in every harness, so a state or output type
 * that would fall back to Kryo fails the test.
 */
class DocumentOperatorTest {
    private static final String DOC = "doc-1";
    private static final int B = 32;
    private static final int A = 16;
    private static final BlockLayout LAYOUT = new BlockLayout(B, A);

    private static ModelLocation location;
    private static Model model;
    private static LongContextGenerator reference;
    private static String story;

    private KeyedTwoInputStreamOperatorTestHarness<String, DocumentEvent, Question, QuestionTask> harness;
    private DocumentOperator operator;

    @BeforeAll
    static void loadModel() throws IOException {
        Path dir = SharedModels.stories260KDir();
        location = new ModelLocation(dir.resolve("stories260K.bin").toString(), dir.resolve("tok512.bin").toString(),
                "reference");
        model = location.load();
        reference = new LongContextGenerator(model, new Transformer(ModelRegistry.backend(model, BackendKind.REFERENCE)));
        story = Files.readString(dir.resolve("reference/greedy_t0_256steps_runc.txt"));
    }

    @AfterEach
    void closeHarness() throws Exception {
        if (harness != null) {
            harness.close();
        }
    }

    // ------------------------------------------------------------------------------------------ blocks

    /** Both ways of cutting (the story's tokenizer, llama2.c tok512, has an exact cut rule). */
    @ParameterizedTest(name = "exact cuts: {0}")
    @ValueSource(booleans = {true, false})
    void blocksGoOutAsTheyBecomeStableAndConcatenateToTheContextTokens(boolean exactCuts) throws Exception {
        open(new DocumentOperator(location, LAYOUT, false, null, exactCuts));
        List<String> chunks = cutIntoSmallPieces(story);
        int[] expected = reference.contextTokens(story);
        StringBuilder sent = new StringBuilder();
        int blocksBeforeLast = 0;
        for (int seq = 0; seq < chunks.size(); seq++) {
            boolean last = seq == chunks.size() - 1;
            harness.processElement1(chunk(DOC, 1, seq, chunks.get(seq), last), 0);
            sent.append(chunks.get(seq));
            List<BlockCommand> soFar = blockCommands();
            int emitted = soFar.stream().mapToInt(c -> c.tokens.length).sum();
            if (!last && exactCuts) {
                blocksBeforeLast = soFar.size();
                // Exactly the full blocks of the tokens before the text's last exact cut: final, and all of them.
                int cut = model.tokenizer().lastExactCut(sent.toString(), 0);
                int finalTokens = cut > 0 ? reference.contextTokens(sent.substring(0, cut)).length : 0;
                assertEquals(finalTokens / B * B, emitted, "tokens emitted after chunk " + seq);
            } else if (!last) {
                blocksBeforeLast = soFar.size();
                // Only stable tokens go out: never the last HOLD_BACK of the text received so far.
                int available = reference.contextTokens(sent.toString()).length;
                assertTrue(emitted <= Math.max(0, available - StableBlockCutter.DEFAULT_HOLD_BACK),
                        "emitted " + emitted + " of " + available + " tokens after chunk " + seq);
                assertEquals(emitted / B, soFar.size(), "only full blocks before the last chunk");
                // ...and as soon as they are stable: at most one block's worth is held back beyond HOLD_BACK.
                assertTrue(emitted > available - StableBlockCutter.DEFAULT_HOLD_BACK - B,
                        "blocks held back too long after chunk " + seq);
            }
        }
        assertTrue(chunks.size() > 50, "the story is cut into many small chunks");
        assertTrue(blocksBeforeLast >= 3, "blocks are emitted while the document is still arriving");

        List<BlockCommand> blocks = blockCommands();
        assertBlocksCover(expected, blocks, 1);
        assertTrue(expected.length % B != 0 && blocks.get(blocks.size() - 1).tokens.length == expected.length % B,
                "the short last block goes out once the last chunk is in");
        DocumentMetrics m = operator.metrics();
        assertEquals(chunks.size(), m.chunksApplied.getCount());
        assertEquals(blocks.size(), m.blocksEmitted.getCount());
        assertEquals(0, m.chunksDuplicate.getCount() + m.chunksOutOfOrderBuffered.getCount());
        assertEquals(1, harness.numKeyedStateEntries(), "a complete document keeps only its catalog");
    }

    @Test
    void outOfOrderChunksWaitForTheirTurn() throws Exception {
        open(newOperator());
        List<String> chunks = cutIntoSmallPieces(story);
        List<Integer> order = new ArrayList<>(IntStream.range(0, chunks.size()).boxed().toList());
        Collections.shuffle(order, new Random(42));
        for (int seq : order) {
            harness.processElement1(chunk(DOC, 1, seq, chunks.get(seq), seq == chunks.size() - 1), 0);
        }
        assertBlocksCover(reference.contextTokens(story), blockCommands(), 1);
        DocumentMetrics m = operator.metrics();
        assertTrue(m.chunksOutOfOrderBuffered.getCount() > 0);
        assertEquals(chunks.size(), m.chunksApplied.getCount());
        assertEquals(1, harness.numKeyedStateEntries(), "text and waiting chunks are gone once complete");
    }

    @Test
    void duplicatesAreDropped() throws Exception {
        open(newOperator());
        List<String> chunks = cutIntoSmallPieces(story);
        int last = chunks.size() - 1;
        // Chunk 5 arrives early, twice (a duplicate of a waiting chunk).
        harness.processElement1(chunk(DOC, 1, 5, chunks.get(5), false), 0);
        harness.processElement1(chunk(DOC, 1, 5, chunks.get(5), false), 0);
        for (int seq = 0; seq <= last; seq++) {
            harness.processElement1(chunk(DOC, 1, seq, chunks.get(seq), seq == last), 0);
            harness.processElement1(chunk(DOC, 1, seq, chunks.get(seq), seq == last), 0); // applied already
        }
        harness.processElement1(chunk(DOC, 1, 0, chunks.get(0), false), 0); // after completion
        assertEquals(0, operator.metrics().chunksDropped.getCount());
        assertBlocksCover(reference.contextTokens(story), blockCommands(), 1);
        DocumentMetrics m = operator.metrics();
        // 1 (waiting) + (last + 1) (applied) + 1 (after completion) + 1 (chunk 5 when its turn came, it was waiting)
        assertEquals(1 + (last + 1) + 1 + 1, m.chunksDuplicate.getCount());
        assertEquals(chunks.size(), m.chunksApplied.getCount());
    }

    @Test
    void theWaitingRoomIsCapped() throws Exception {
        open(newOperator());
        for (int seq = 1; seq <= DocumentOperator.MAX_BUFFERED_CHUNKS + 1; seq++) {
            harness.processElement1(chunk(DOC, 1, seq, "a", false), 0);
        }
        DocumentMetrics m = operator.metrics();
        assertEquals(DocumentOperator.MAX_BUFFERED_CHUNKS, m.chunksOutOfOrderBuffered.getCount());
        assertEquals(1, m.chunksDropped.getCount());
        harness.processElement1(chunk(DOC, 1, 0, "a", false), 0);
        assertEquals(DocumentOperator.MAX_BUFFERED_CHUNKS + 1, m.chunksApplied.getCount());
    }

    @Test
    void aNewerVersionDropsTheOldBlocksAndStartsOver() throws Exception {
        open(newOperator());
        sendWhole(DOC, 1, story);
        int oldBlocks = blockCommands().size();
        harness.processElement2(question("q-old", DOC, "Who is Lily?"), 0);
        harness.getSideOutput(DocumentOperator.BLOCK_COMMANDS).clear();

        String second = "Tom had a small dog named Max. Max liked to run in the garden every morning.";
        sendWhole(DOC, 2, second);
        List<BlockCommand> commands = blockCommands();
        List<BlockCommand> drops = commands.stream().filter(c -> c.kind == BlockCommand.Kind.DROP).toList();
        assertEquals(IntStream.range(0, oldBlocks).boxed().toList(), drops.stream().map(c -> c.block).toList());
        assertTrue(drops.stream().allMatch(c -> c.version == 1 && c.docId.equals(DOC)));
        List<BlockCommand> encodes = commands.stream().filter(c -> c.kind == BlockCommand.Kind.ENCODE).toList();
        assertBlocksCover(reference.contextTokens(second), encodes, 2);
        assertEquals(commands.indexOf(drops.get(drops.size() - 1)) + 1, commands.indexOf(encodes.get(0)),
                "the old blocks are dropped before the new ones go out");

        // Chunks of an older version are ignored from now on.
        harness.processElement1(chunk(DOC, 1, 0, "stale", true), 0);
        assertEquals(1, operator.metrics().chunksStaleVersion.getCount());
        assertEquals(commands.size(), blockCommands().size());

        harness.processElement2(question("q-new", DOC, "Who is Max?"), 0);
        List<QuestionTask> tasks = harness.extractOutputValues();
        assertEquals(2, tasks.size());
        QuestionTask old = tasks.get(0);
        assertEquals(1, old.version);
        assertEquals(oldBlocks, old.blockCount);
        assertEquals(reference.contextTokens(story).length, old.contextLength);
        assertEquals(2, tasks.get(1).version);
        assertEquals(encodes.size(), tasks.get(1).blockCount);
        assertEquals(reference.contextTokens(second).length, tasks.get(1).contextLength);
    }

    @Test
    void aDeleteDropsEveryBlockAndClearsAllState() throws Exception {
        open(newOperator());
        List<String> chunks = cutIntoSmallPieces(story);
        int half = chunks.size() / 2;
        for (int seq = 0; seq < half; seq++) {
            harness.processElement1(chunk(DOC, 3, seq, chunks.get(seq), false), 0);
        }
        harness.processElement1(chunk(DOC, 3, half + 2, chunks.get(half + 2), false), 0); // waits
        int emitted = blockCommands().size();
        assertTrue(emitted > 0);
        assertEquals(3, harness.numKeyedStateEntries(), "catalog, text and waiting chunks");

        harness.processElement1(delete(DOC, 2), 0); // older than the document: ignored
        assertEquals(3, harness.numKeyedStateEntries());
        assertEquals(emitted, blockCommands().size());

        harness.processElement1(delete(DOC, 3), 0);
        List<BlockCommand> drops = blockCommands().subList(emitted, blockCommands().size());
        assertEquals(IntStream.range(0, emitted).boxed().toList(), drops.stream().map(c -> c.block).toList());
        assertTrue(drops.stream().allMatch(c -> c.kind == BlockCommand.Kind.DROP && c.version == 3));
        assertEquals(0, harness.numKeyedStateEntries(), "every state of the document is empty");

        // A question with a timestamp waits for a record of its document (one older than it may still come) ...
        harness.processElement2(question("q", DOC, "Who is Lily?"), 0);
        assertNull(harness.getSideOutput(DocumentOperator.ANSWER_ERRORS));
        // ... until its prefix wait runs out.
        harness.setProcessingTime(DocumentOperator.DEFAULT_PREFIX_WAIT.toMillis());
        assertEquals("unknown document " + DOC, onlyError().getError());
    }

    @Test
    void anEmptyDocumentHasNoBlockAndSaysSo() throws Exception {
        open(newOperator());
        harness.processElement1(chunk(DOC, 1, 0, "", false), 0);
        harness.processElement1(chunk(DOC, 1, 1, "   ", false), 0);
        harness.processElement1(chunk(DOC, 1, 2, "\n", true), 0);
        assertTrue(blockCommands().isEmpty());
        harness.processElement2(question("q", DOC, "Anything?"), 0);
        assertEquals("document " + DOC + " is empty", onlyError().getError());
        assertEquals(1, harness.numKeyedStateEntries());
    }

    // ------------------------------------------------------------------------------------------ questions

    @Test
    void aQuestionIsAnsweredOverTheBlocksOfTheChunksUpToItsTimestamp() throws Exception {
        open(newOperator());
        List<String> chunks = cutIntoSmallPieces(story);
        int half = chunks.size() / 2;
        for (int seq = 0; seq < half; seq++) {
            harness.processElement1(chunk(DOC, 1, seq, chunks.get(seq), false), 10L * seq);
        }
        int partialBlocks = blockCommands().size();
        assertTrue(partialBlocks > 0);
        harness.setProcessingTime(1234);
        // Produced after chunk half-1 and before chunk half: it waits until a chunk newer than it arrives.
        harness.processElement2(Question.newBuilder(question("early", DOC, "Who is Lily?")).setMaxNewTokens(7)
                .setTemperature(0.5f).setTopP(0.9f).setSeed(99).setStop(List.of("\n")).build(), 10L * half - 5);
        assertEquals(0, harness.extractOutputValues().size(), "no chunk newer than the question has arrived yet");
        for (int seq = half; seq < chunks.size(); seq++) {
            harness.processElement1(chunk(DOC, 1, seq, chunks.get(seq), seq == chunks.size() - 1), 10L * seq);
        }
        harness.processElement2(question("late", DOC, "Who is Lily?"), 10L * chunks.size());

        List<QuestionTask> tasks = harness.extractOutputValues();
        assertEquals(2, tasks.size());
        QuestionTask early = tasks.get(0);
        assertEquals("early", early.questionId);
        assertEquals(DOC, early.docId);
        assertEquals(1, early.version);
        assertEquals(partialBlocks, early.blockCount);
        assertEquals(partialBlocks * B, early.contextLength);
        assertEquals(1234, early.receivedMs);
        assertEquals("Who is Lily?", early.text);
        assertEquals(7, early.maxNewTokens);
        assertEquals(0.5f, early.temperature);
        assertEquals(0.9f, early.topP);
        assertEquals(99, early.seed);
        assertArrayEquals(new String[] {"\n"}, early.stop);
        assertFalse(early.documentComplete, "the early question saw part of the document");
        QuestionTask late = tasks.get(1);
        assertEquals(blockCommands().size(), late.blockCount);
        assertEquals(reference.contextTokens(story).length, late.contextLength);
        assertTrue(late.documentComplete);
        assertEquals(new Coverage(1L, late.blockCount, late.contextLength, true), late.coverage());
        assertEquals(2, operator.metrics().questionsAccepted.getCount());
        assertEquals(1, operator.metrics().questionsHeldForPrefix.getCount(), "the early question waited");
    }

    @Test
    void aQuestionThatWaitsIsAdmittedOnceTheDocumentIsComplete() throws Exception {
        open(newOperator());
        List<String> chunks = cutIntoSmallPieces(story);
        harness.setProcessingTime(1000);
        // before any chunk (the asker was faster than the ingest), and again halfway through
        harness.processElement2(waiting(question("first", DOC, "Who is Lily?"), 60_000), 0);
        int half = chunks.size() / 2;
        for (int seq = 0; seq < half; seq++) {
            harness.processElement1(chunk(DOC, 1, seq, chunks.get(seq), false), 0);
        }
        harness.processElement2(waiting(question("second", DOC, "Who is Lily?"), 60_000), 0);
        assertTrue(harness.extractOutputValues().isEmpty(), "nobody is admitted while the document streams");
        harness.setProcessingTime(2000);
        for (int seq = half; seq < chunks.size(); seq++) {
            harness.processElement1(chunk(DOC, 1, seq, chunks.get(seq), seq == chunks.size() - 1), 0);
        }
        List<QuestionTask> tasks = harness.extractOutputValues();
        assertEquals(List.of("first", "second"), tasks.stream().map(t -> t.questionId).sorted().toList());
        for (QuestionTask task : tasks) {
            assertTrue(task.documentComplete);
            assertEquals(reference.contextTokens(story).length, task.contextLength);
            assertEquals(1000, task.receivedMs, "time to first token counts from the question's arrival");
        }
        assertEquals(1, harness.numKeyedStateEntries(), "no waiting question left behind, only the catalog");
        harness.setProcessingTime(100_000); // the timers find nobody waiting
        assertNull(harness.getSideOutput(DocumentOperator.ANSWER_ERRORS));
        assertEquals(2, operator.metrics().questionsWaited.getCount());
    }

    @Test
    void aQuestionThatWaitsTooLongGetsAnErrorSayingHowFarTheDocumentGot() throws Exception {
        open(newOperator());
        List<String> chunks = cutIntoSmallPieces(story);
        for (int seq = 0; seq < chunks.size() / 2; seq++) {
            harness.processElement1(chunk(DOC, 1, seq, chunks.get(seq), false), 0);
        }
        int blocks = blockCommands().size();
        harness.setProcessingTime(1000);
        harness.processElement2(waiting(question("patient", DOC, "Who is Lily?"), 5000), 0);
        harness.processElement2(waiting(question("unknown", "nowhere", "Who?"), 3000), 0);
        harness.setProcessingTime(4500);
        AnswerToken unknown = onlyError();
        assertEquals("unknown", unknown.getQuestionId());
        assertTrue(unknown.getError().contains("document nowhere is still incomplete after waiting 3000 ms: no chunk"),
                unknown.getError());
        harness.setProcessingTime(6000);
        AnswerToken patient = onlyError();
        assertEquals("patient", patient.getQuestionId());
        assertTrue(patient.getError().startsWith("document " + DOC + " is still incomplete after waiting 5000 ms: "
                + "version 1 has " + blocks + " blocks"), patient.getError());
        assertTrue(harness.extractOutputValues().isEmpty());
    }

    @Test
    void aQuestionThatWaitsOnACompleteDocumentIsAdmittedAtOnce() throws Exception {
        open(newOperator());
        sendWhole(DOC, 1, story);
        harness.processElement2(waiting(question("q", DOC, "Who is Lily?"), 60_000), 0);
        assertEquals(1, harness.extractOutputValues().size());
        assertEquals(0, operator.metrics().questionsWaited.getCount());
    }

    @Test
    void questionsThatCannotBeAnsweredGetAnErrorAnswer() throws Exception {
        open(newOperator());
        assertRejected(question("q", "nowhere", "Who?"), "unknown document nowhere");

        harness.processElement1(chunk(DOC, 1, 0, "Once upon a time", false), 0);
        assertRejected(question("q", DOC, "Who?"), "document " + DOC + " has no complete block yet");
        sendWhole(DOC, 2, story);
        int n = reference.contextTokens(story).length;

        Question ok = question("q", DOC, "Who is Lily?");
        assertRejected(Question.newBuilder(ok).setText("  \n").build(), "the question text is empty");
        assertRejected(Question.newBuilder(ok).setMaxNewTokens(0).build(), "max_new_tokens must be in 1..");
        assertRejected(Question.newBuilder(ok).setMaxNewTokens(SamplingParams.MAX_NEW_TOKENS_LIMIT + 1).build(),
                "max_new_tokens must be in 1..");
        assertRejected(Question.newBuilder(ok).setTemperature(-0.1f).build(), "temperature must be");
        assertRejected(Question.newBuilder(ok).setTemperature(Float.NaN).build(), "temperature must be");
        assertRejected(Question.newBuilder(ok).setTopP(0f).build(), "top_p must be in (0, 1]");
        assertRejected(Question.newBuilder(ok).setTopP(1.5f).build(), "top_p must be in (0, 1]");
        assertRejected(Question.newBuilder(ok).setStop(List.of("")).build(), "stop strings must not be empty");

        int questionTokens = reference.questionTokens("Who is Lily?").length;
        int tooMany = 512 - n - questionTokens + 1;
        assertRejected(Question.newBuilder(ok).setMaxNewTokens(tooMany).build(),
                "question of " + questionTokens + " tokens + context of " + n + " tokens + " + tooMany
                        + " new tokens = 513 exceeds the model's context window of 512");
        assertEquals(11, operator.metrics().questionsRejected.getCount());

        // Exactly at the window is fine.
        harness.processElement2(Question.newBuilder(ok).setMaxNewTokens(tooMany - 1).build(), 0);
        assertEquals(1, harness.extractOutputValues().size());
        assertEquals(1, operator.metrics().questionsAccepted.getCount());
    }

    @Test
    void beyondTheWindowWhenAllowed() throws Exception {
        open(new DocumentOperator(location, LAYOUT, true, null, true));
        sendWhole(DOC, 1, story);
        harness.processElement2(Question.newBuilder(question("q", DOC, "Who is Lily?")).setMaxNewTokens(4000).build(), 0);
        assertEquals(1, harness.extractOutputValues().size());
        assertTrue(harness.getSideOutput(DocumentOperator.ANSWER_ERRORS) == null
                || harness.getSideOutput(DocumentOperator.ANSWER_ERRORS).isEmpty());
    }

    @Test
    void anInconsistentTokenizationMarksTheDocumentBrokenAndTheJobGoesOn() throws Exception {
        // Without a hold-back and with 1-token blocks, the partial word "ti" goes out as a block, and "time"
        // then tokenizes differently: exactly the case the hold-back exists for.
        operator = new DocumentOperator(location, new BlockLayout(1, 1), false, null, false,
                DocumentOperator.DEFAULT_PREFIX_WAIT, 0);
        open(operator);
        harness.processElement1(chunk(DOC, 1, 0, "Once upon a ti", false), 0);
        harness.processElement1(chunk(DOC, 1, 1, "me, there was", false), 0);
        assertEquals(1, operator.metrics().documentsBroken.getCount());
        harness.processElement1(chunk(DOC, 1, 2, " a girl.", true), 0);
        assertEquals(1, operator.metrics().chunksDropped.getCount());
        harness.processElement2(question("q", DOC, "Who?"), 0);
        assertTrue(onlyError().getError().toString().contains("is broken"));

        // A newer version recovers the document.
        int before = blockCommands().size();
        harness.processElement1(chunk(DOC, 2, 0, "Once upon a time", true), 0);
        harness.processElement2(question("q2", DOC, "Who?"), 0);
        assertEquals(2, harness.extractOutputValues().get(0).version);
        assertEquals(before, blockCommands().stream().filter(c -> c.kind == BlockCommand.Kind.DROP).count());
    }

    @Test
    void idleDocumentsExpireWithTheTtl() throws Exception {
        open(new DocumentOperator(location, LAYOUT, false, Duration.ofMinutes(10), true));
        harness.setStateTtlProcessingTime(0);
        sendWhole(DOC, 1, story);
        harness.setStateTtlProcessingTime(Duration.ofMinutes(9).toMillis());
        harness.processElement2(question("q1", DOC, "Who is Lily?"), 0);
        assertEquals(1, harness.extractOutputValues().size());
        harness.setStateTtlProcessingTime(Duration.ofMinutes(11).toMillis());
        harness.processElement2(new StreamRecord<>(question("q2", DOC, "Who is Lily?"))); // untimed: at once
        assertEquals("unknown document " + DOC, onlyError().getError());
    }

    @Test
    void anAdmittedQuestionTouchesEveryBlockItCoversWhenBlocksExpire() throws Exception {
        open(new DocumentOperator(location, LAYOUT, false, Duration.ofMinutes(10), true));
        sendWhole(DOC, 1, story);
        List<BlockCommand> encodes = blockCommands();
        harness.processElement2(question("q1", DOC, "Who is Lily?"), 0);
        List<BlockCommand> touches = blockCommands().subList(encodes.size(), blockCommands().size());
        assertEquals(encodes.stream().map(c -> c.blockKey(128)).toList(),
                touches.stream().map(c -> c.blockKey(128)).toList(), "one TOUCH per block of the catalog");
        assertTrue(touches.stream().allMatch(c -> c.kind == BlockCommand.Kind.TOUCH), touches.toString());

        harness.close();
        open(newOperator()); // without a TTL nothing expires: no TOUCH
        sendWhole(DOC, 1, story);
        int commands = blockCommands().size();
        harness.processElement2(question("q2", DOC, "Who is Lily?"), 0);
        assertEquals(commands, blockCommands().size());
    }

    // ------------------------------------------------------------------------------------------ checkpoints

    @Test
    void aRestoredOperatorContinuesTheDocument() throws Exception {
        open(newOperator());
        List<String> chunks = cutIntoSmallPieces(story);
        int half = chunks.size() / 2;
        for (int seq = 0; seq < half; seq++) {
            harness.processElement1(chunk(DOC, 1, seq, chunks.get(seq), false), 0);
        }
        harness.processElement1(chunk(DOC, 1, half + 1, chunks.get(half + 1), false), 0); // waits across restore
        List<BlockCommand> before = blockCommands();
        OperatorSubtaskState snapshot = harness.snapshot(1, 1);
        harness.close();

        harness = newHarness(newOperator());
        harness.initializeState(snapshot);
        harness.open();
        harness.processElement2(new StreamRecord<>(question("q", DOC, "Who is Lily?"))); // untimed: what exists
        assertEquals(before.size(), harness.extractOutputValues().get(0).blockCount);
        for (int seq = half; seq < chunks.size(); seq++) {
            if (seq != half + 1) {
                harness.processElement1(chunk(DOC, 1, seq, chunks.get(seq), seq == chunks.size() - 1), 0);
            }
        }
        List<BlockCommand> all = new ArrayList<>(before);
        all.addAll(blockCommands());
        assertBlocksCover(reference.contextTokens(story), all, 1);
    }

    /** State written by an operator that cut the whole text (as before exact cuts existed) finishes that way. */
    @Test
    void aDocumentStartedTheWholeTextWayFinishesThatWayAfterARestore() throws Exception {
        open(new DocumentOperator(location, LAYOUT, false, null, false));
        List<String> chunks = cutIntoSmallPieces(story);
        int half = chunks.size() / 2;
        for (int seq = 0; seq < half; seq++) {
            harness.processElement1(chunk(DOC, 1, seq, chunks.get(seq), false), 0);
        }
        List<BlockCommand> before = blockCommands();
        OperatorSubtaskState snapshot = harness.snapshot(1, 1);
        harness.close();

        harness = newHarness(newOperator()); // exact cuts on
        harness.initializeState(snapshot);
        harness.open();
        for (int seq = half; seq < chunks.size(); seq++) {
            harness.processElement1(chunk(DOC, 1, seq, chunks.get(seq), seq == chunks.size() - 1), 0);
        }
        List<BlockCommand> all = new ArrayList<>(before);
        all.addAll(blockCommands());
        assertBlocksCover(reference.contextTokens(story), all, 1);
    }

    @Test
    void stateAndMessageTypesAreFlinkPojos() throws Exception {
        // The function travels in the job graph: it must serialize (paths, sizes, flags; no model).
        DocumentOperator copy = InstantiationUtil.clone(newOperator());
        assertEquals(newOperator().toString(), copy.toString());
        assertInstanceOf(PojoTypeInfo.class, TypeInformation.of(DocumentState.class));
        assertInstanceOf(PojoTypeInfo.class, TypeInformation.of(DocumentTail.class));
        assertInstanceOf(PojoTypeInfo.class, TypeInformation.of(BlockCommand.class));
        assertInstanceOf(PojoTypeInfo.class, TypeInformation.of(QuestionTask.class));
        assertEquals("starflink-document", DocumentOperator.DOCUMENT.getName());
        assertEquals("starflink-document-text", DocumentOperator.TEXT.getName());
        assertEquals("starflink-document-tail", DocumentOperator.TAIL.getName());
        assertEquals("starflink-document-pending-chunks", DocumentOperator.PENDING_CHUNKS.getName());
        assertFalse(DocumentOperator.DOCUMENT.getTtlConfig().isEnabled(), "the shared constant carries no TTL");
    }

    // ------------------------------------------------------------------------------------------ admission by timestamp

    /** A record of either input with its Kafka timestamp. */
    private record Timed(Object record, long timestamp) {
    }

    /**
     * The same log (chunk i at timestamp 10 i, questions between, before and after them, one at a chunk's own
     * timestamp) read in three interleavings: each question as soon as it is produced, every chunk before every
     * question (a replay whose documents source got ahead), every question before every chunk. Each question gets
     * the same catalog in all three: the blocks of the chunks up to its timestamp.
     */
    @Test
    void theCatalogAQuestionSeesDependsOnTheLogNotOnTheInterleaving() throws Exception {
        List<String> chunks = cutIntoSmallPieces(story);
        List<Timed> chunkRecords = new ArrayList<>();
        for (int seq = 0; seq < chunks.size(); seq++) {
            chunkRecords.add(new Timed(chunk(DOC, 1, seq, chunks.get(seq), seq == chunks.size() - 1), 10L * seq));
        }
        long[] questionTimes = {-1 + 10, 10L * (chunks.size() / 3) + 5, 10L * (chunks.size() / 2),
                10L * (chunks.size() - 1) - 1, 10L * chunks.size()};
        List<Timed> questionRecords = new ArrayList<>();
        for (int i = 0; i < questionTimes.length; i++) {
            questionRecords.add(new Timed(question("q" + i, DOC, "Who is Lily?"), questionTimes[i]));
        }
        // As produced: by timestamp, a question after the chunks of its own timestamp.
        List<Timed> asProduced = new ArrayList<>(chunkRecords);
        for (Timed question : questionRecords) {
            int at = 0;
            while (at < asProduced.size() && asProduced.get(at).timestamp() <= question.timestamp()) {
                at++;
            }
            asProduced.add(at, question);
        }
        List<Timed> documentsFirst = new ArrayList<>(chunkRecords);
        documentsFirst.addAll(questionRecords);
        List<Timed> questionsFirst = new ArrayList<>(questionRecords);
        questionsFirst.addAll(chunkRecords);

        // What each question must see, from the blocks out after each chunk (one pass, chunks alone).
        open(newOperator());
        List<Integer> blocksAfterChunk = new ArrayList<>();
        for (Timed chunk : chunkRecords) {
            harness.processElement1((DocumentEvent) chunk.record(), chunk.timestamp());
            blocksAfterChunk.add(blockCommands().size());
        }
        int allBlocks = blocksAfterChunk.get(blocksAfterChunk.size() - 1);
        int n = reference.contextTokens(story).length;
        harness.close();
        List<String> expected = new ArrayList<>();
        for (int i = 0; i < questionTimes.length; i++) {
            int lastChunk = (int) Math.min(chunks.size() - 1, questionTimes[i] / 10); // chunk seq at 10 seq <= t
            int blocks = blocksAfterChunk.get(lastChunk);
            boolean complete = lastChunk == chunks.size() - 1;
            expected.add("q" + i + ": " + (blocks == 0 ? "document " + DOC + " has no complete block yet"
                    : blocks + " blocks, " + (blocks == allBlocks ? n : blocks * B) + " tokens, "
                    + (complete ? "complete" : "incomplete")));
        }
        assertTrue(expected.stream().map(e -> e.split(" ")[1]).distinct().count() >= 4, "the questions see "
                + "different prefixes: " + expected);

        assertEquals(expected, catalogsSeen(asProduced), "read as produced");
        assertEquals(expected, catalogsSeen(documentsFirst), "documents first");
        assertEquals(expected, catalogsSeen(questionsFirst), "questions first");
    }

    /** Reads the records in this order into a fresh operator; the catalog each question saw, by question id. */
    private List<String> catalogsSeen(List<Timed> records) throws Exception {
        return catalogsSeen(records, Duration.ZERO);
    }

    /** As above, then processing time moves on by {@code thenWait} (a prefix wait may run out). */
    private List<String> catalogsSeen(List<Timed> records, Duration thenWait) throws Exception {
        open(newOperator());
        for (Timed timed : records) {
            if (timed.record() instanceof DocumentEvent event) {
                harness.processElement1(event, timed.timestamp());
            } else {
                harness.processElement2((Question) timed.record(), timed.timestamp());
            }
        }
        harness.setProcessingTime(harness.getProcessingTime() + thenWait.toMillis());
        List<String> seen = harness.extractOutputValues().stream()
                .sorted(java.util.Comparator.comparing((QuestionTask t) -> t.questionId))
                .map(t -> t.questionId + ": " + t.blockCount + " blocks, " + t.contextLength + " tokens, "
                        + (t.documentComplete ? "complete" : "incomplete"))
                .collect(java.util.stream.Collectors.toCollection(ArrayList::new));
        var errors = harness.getSideOutput(DocumentOperator.ANSWER_ERRORS);
        if (errors != null) {
            errors.forEach(e -> seen.add(e.getValue().getQuestionId() + ": " + e.getValue().getError()));
        }
        seen.sort(null);
        harness.close();
        harness = null;
        return seen;
    }

    @Test
    void aQuestionWhosePrefixWaitRunsOutIsAdmittedOverWhatItSeesThen() throws Exception {
        open(new DocumentOperator(location, LAYOUT, false, null, true, Duration.ofSeconds(2)));
        List<String> chunks = cutIntoSmallPieces(story);
        int half = chunks.size() / 2;
        for (int seq = 0; seq < half; seq++) {
            harness.processElement1(chunk(DOC, 1, seq, chunks.get(seq), false), 10L * seq);
        }
        int partialBlocks = blockCommands().size();
        harness.setProcessingTime(1000);
        harness.processElement2(question("stalled", DOC, "Who is Lily?"), 10L * half);
        harness.setProcessingTime(2999);
        assertEquals(0, harness.extractOutputValues().size(), "waits for a newer chunk up to 2 s");
        harness.setProcessingTime(3000);
        List<QuestionTask> tasks = harness.extractOutputValues();
        assertEquals(1, tasks.size());
        assertEquals(partialBlocks, tasks.get(0).blockCount);
        assertFalse(tasks.get(0).documentComplete);
        assertEquals(1, operator.metrics().questionsPrefixWaitExpired.getCount());
    }

    @Test
    void aQuestionHeldForItsPrefixGetsAnErrorWhenTheDocumentIsDeleted() throws Exception {
        open(newOperator());
        harness.processElement1(chunk(DOC, 1, 0, story.substring(0, 400), false), 10);
        harness.processElement2(question("held", DOC, "Who is Lily?"), 20);
        assertNull(harness.getSideOutput(DocumentOperator.ANSWER_ERRORS));
        harness.processElement1(delete(DOC, 1), 15); // an older record than the question: still deleted now
        assertEquals("document " + DOC + " was deleted while the question waited", onlyError().getError());
        assertEquals(0, harness.extractOutputValues().size());
    }

    /**
     * The documented limit of the rule (docs/document-operator.md, "What does not change an answer, and what still
     * can"): a new version, or a delete, whose record is older than a question but read after the question was
     * decided. Version 1 is complete (chunk i at timestamp 10 i); the question's timestamp is after the record of
     * version 2 (one chunk, the whole text) or of the delete. Read as produced, the question is decided on the
     * complete version 1 before that record is read; read with that record first (a replay whose documents source got
     * ahead) it sees version 2, or, after the delete, nothing: {@code unknown document} once its prefix wait runs out.
     * The two interleavings of the same records give two different answers.
     */
    @ParameterizedTest(name = "then a {0}")
    @ValueSource(strings = {"new version", "delete"})
    void aNewVersionOrDeleteOlderThanAQuestionButReadAfterItWasDecidedChangesWhatAReplaySees(String next)
            throws Exception {
        List<String> chunks = cutIntoSmallPieces(story);
        List<Timed> version1 = new ArrayList<>();
        for (int seq = 0; seq < chunks.size(); seq++) {
            version1.add(new Timed(chunk(DOC, 1, seq, chunks.get(seq), seq == chunks.size() - 1), 10L * seq));
        }
        long after = 10L * chunks.size();
        String second = "Tom had a small dog named Max. Max liked to run in the garden every morning.";
        Timed older = new Timed(next.equals("delete") ? delete(DOC, 1) : chunk(DOC, 2, 0, second, true), after + 100);
        Timed question = new Timed(question("q", DOC, "Who is Lily?"), after + 500);

        List<Timed> asProduced = new ArrayList<>(version1);
        asProduced.add(question);
        asProduced.add(older);
        List<Timed> recordFirst = new ArrayList<>(version1);
        recordFirst.add(older);
        recordFirst.add(question);

        int n = reference.contextTokens(story).length;
        String sawVersion1 = "q: " + (n + B - 1) / B + " blocks, " + n + " tokens, complete";
        assertEquals(List.of(sawVersion1), catalogsSeen(asProduced), "decided on version 1, then the record read");
        int m = reference.contextTokens(second).length;
        String sawNext = next.equals("delete") ? "q: unknown document " + DOC
                : "q: " + (m + B - 1) / B + " blocks, " + m + " tokens, complete";
        assertEquals(List.of(sawNext), catalogsSeen(recordFirst, DocumentOperator.DEFAULT_PREFIX_WAIT),
                "the same records, the " + next + " read before the question");
    }

    /**
     * State written before questions were admitted by timestamp restores, and its document finishes by the old rule.
     * {@code document-operator/state-79d0ae4.snapshot} was written by the DocumentOperator of commit 79d0ae4 (this
     * test class's helpers there: the first 61 of the story's {@link #cutIntoSmallPieces} chunks of {@link #DOC}
     * version 1, exact cuts, 3 blocks out, then question "waiter" with wait_complete_ms 60000; written with
     * {@code OperatorSnapshotUtil.writeStateHandle(harness.snapshot(1, 1), path)}).
     */
    @Test
    void stateFromBeforeTheTimestampRuleRestoresAndItsDocumentIsAdmittedByTheOldRule() throws Exception {
        OperatorSubtaskState snapshot = org.apache.flink.streaming.util.OperatorSnapshotUtil.readStateHandle(
                Path.of("src/test/resources/document-operator/state-79d0ae4.snapshot").toString());
        harness = newHarness(newOperator());
        harness.initializeState(snapshot);
        harness.open();
        List<String> chunks = cutIntoSmallPieces(story);
        // Its catalog has no visibility times: a question with a timestamp is admitted at once over what exists.
        harness.processElement2(question("restored", DOC, "Who is Lily?"), 5);
        assertEquals(1, harness.extractOutputValues().size(), "admitted at once, as before");
        assertEquals(3, harness.extractOutputValues().get(0).blockCount);
        for (int seq = 61; seq < chunks.size(); seq++) {
            harness.processElement1(chunk(DOC, 1, seq, chunks.get(seq), seq == chunks.size() - 1), 1000L + seq);
        }
        List<QuestionTask> tasks = harness.extractOutputValues();
        assertEquals(2, tasks.size(), "the restored waiting question is admitted once the document is complete");
        assertEquals("waiter", tasks.get(1).questionId);
        assertTrue(tasks.get(1).documentComplete);
        int[] expected = reference.contextTokens(story);
        assertEquals(expected.length, tasks.get(1).contextLength);
        // Still the old rule for this version: an old question sees the whole document.
        harness.processElement2(question("old", DOC, "Who is Lily?"), 0);
        assertEquals(tasks.get(1).blockCount, harness.extractOutputValues().get(2).blockCount);
        // Its next version is timed.
        harness.processElement1(chunk(DOC, 2, 0, story.substring(0, 200), false), 5000);
        harness.processElement2(question("v2", DOC, "Who is Lily?"), 6000);
        assertEquals(3, harness.extractOutputValues().size(), "waits for a record of version 2 newer than it");
        assertEquals(1, operator.metrics().questionsHeldForPrefix.getCount());
    }

    // ------------------------------------------------------------------------------------------ helpers

    private DocumentOperator newOperator() {
        return new DocumentOperator(location, LAYOUT, false, null, true);
    }

    private void open(DocumentOperator op) throws Exception {
        harness = newHarness(op);
        harness.open();
    }

    private KeyedTwoInputStreamOperatorTestHarness<String, DocumentEvent, Question, QuestionTask> newHarness(
            DocumentOperator op) throws Exception {
        operator = op;
        var h = new KeyedTwoInputStreamOperatorTestHarness<>(new KeyedCoProcessOperator<>(op),
                DocumentEvent::getDocId, Question::getDocId, Types.STRING);
        ((SerializerConfigImpl) h.getExecutionConfig().getSerializerConfig()).setGenericTypes(false);
        return h;
    }

    /** Pieces of 1 to 9 characters: most chunk boundaries cut a word. */
    private static List<String> cutIntoSmallPieces(String text) {
        List<String> pieces = new ArrayList<>();
        Random random = new Random(7);
        for (int start = 0; start < text.length(); ) {
            int end = Math.min(text.length(), start + 1 + random.nextInt(9));
            pieces.add(text.substring(start, end));
            start = end;
        }
        return pieces;
    }

    private void sendWhole(String docId, long version, String text) throws Exception {
        List<String> chunks = cutIntoSmallPieces(text);
        for (int seq = 0; seq < chunks.size(); seq++) {
            harness.processElement1(chunk(docId, version, seq, chunks.get(seq), seq == chunks.size() - 1), 0);
        }
    }

    private List<BlockCommand> blockCommands() {
        var out = harness.getSideOutput(DocumentOperator.BLOCK_COMMANDS);
        return out == null ? List.of() : out.stream().map(StreamRecord::getValue).toList();
    }

    private AnswerToken onlyError() {
        var errors = harness.getSideOutput(DocumentOperator.ANSWER_ERRORS);
        assertEquals(1, errors.size(), "one error answer");
        AnswerToken error = errors.poll().getValue();
        assertTrue(error.getFinal$());
        assertEquals(FinishReason.ERROR, error.getFinishReason());
        assertEquals(-1, error.getTokenId());
        return error;
    }

    private void assertRejected(Question question, String message) throws Exception {
        int accepted = harness.extractOutputValues().size();
        harness.processElement2(new StreamRecord<>(question)); // untimed: over the catalog as it is
        AnswerToken error = onlyError();
        assertTrue(error.getError().startsWith(message), "'" + error.getError() + "' starts with '" + message + "'");
        assertEquals(question.getQuestionId(), error.getQuestionId());
        assertEquals(question.getDocId(), error.getDocId());
        assertEquals(accepted, harness.extractOutputValues().size(), "no task for a rejected question");
    }

    /** ENCODE commands 0..k-1 of one version, each of b tokens but the last, concatenated = expected. */
    private static void assertBlocksCover(int[] expected, List<BlockCommand> blocks, long version) {
        int[] anchor = Arrays.copyOf(expected, A);
        int position = 0;
        for (int i = 0; i < blocks.size(); i++) {
            BlockCommand block = blocks.get(i);
            assertEquals(BlockCommand.Kind.ENCODE, block.kind);
            assertEquals(DOC, block.docId);
            assertEquals(version, block.version);
            assertEquals(i, block.block);
            assertEquals(position, block.start);
            assertEquals(i * B, block.start);
            assertTrue(block.tokens.length == B || i == blocks.size() - 1, "only the last block may be short");
            assertArrayEquals(i == 0 ? new int[0] : anchor, block.anchorTokens, "anchor of block " + i);
            position += block.tokens.length;
        }
        int[] concatenated = blocks.stream().flatMapToInt(c -> Arrays.stream(c.tokens)).toArray();
        assertArrayEquals(expected, concatenated);
        assertFalse(blocks.isEmpty());
    }

    private static DocumentEvent chunk(String docId, long version, int seq, String text, boolean last) {
        return DocumentEvent.newBuilder().setDocId(docId).setVersion(version)
                .setBody(DocumentChunk.newBuilder().setSeq(seq).setText(text).setLast(last).build()).build();
    }

    private static DocumentEvent delete(String docId, long version) {
        return DocumentEvent.newBuilder().setDocId(docId).setVersion(version)
                .setBody(DocumentDelete.newBuilder().setReason("test").build()).build();
    }

    private static Question waiting(Question question, long waitMs) {
        return Question.newBuilder(question).setWaitCompleteMs(waitMs).build();
    }

    private static Question question(String id, String docId, String text) {
        // 16 new tokens: the story (~250 tokens) + the schema's default 256 would exceed stories260K's window.
        return Question.newBuilder().setQuestionId(id).setDocId(docId).setText(text).setMaxNewTokens(16).build();
    }
}
