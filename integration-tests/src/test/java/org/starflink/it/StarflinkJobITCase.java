package org.starflink.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.UnaryOperator;
import org.apache.flink.api.common.JobID;
import org.apache.flink.api.common.JobStatus;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.core.execution.SavepointFormatType;
import org.apache.flink.metrics.Counter;
import org.apache.flink.metrics.Gauge;
import org.apache.flink.metrics.MetricGroup;
import org.apache.flink.runtime.testutils.InMemoryReporter;
import org.apache.flink.runtime.testutils.MiniClusterResourceConfiguration;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.test.junit5.MiniClusterExtension;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.starflink.operators.cluster.LoopbackCluster;
import org.starflink.engine.backend.BackendKind;
import org.starflink.engine.checkpoint.ModelRegistry;
import org.starflink.engine.forward.Transformer;
import org.starflink.engine.generate.SamplingParams;
import org.starflink.engine.model.Model;
import org.starflink.engine.star.BlockLayout;
import org.starflink.engine.star.LongContextGenerator;
import org.starflink.engine.testing.SharedModels;
import org.starflink.kafka.EmbeddedKafka;
import org.starflink.operators.document.DocumentTail;
import org.starflink.pipeline.StarflinkJob;
import org.starflink.pipeline.StarflinkOptions;
import org.starflink.operators.document.StableBlockCutter;
import org.starflink.operators.loop.FeedbackLoop;
import org.starflink.operators.loop.LoopHeadOperator;
import org.starflink.operators.kafka.KafkaRawRecord;
import org.starflink.operators.messages.BlockKeys;
import org.starflink.schemas.AnswerToken;
import org.starflink.schemas.DocumentChunk;
import org.starflink.schemas.DocumentDelete;
import org.starflink.schemas.DocumentEvent;
import org.starflink.schemas.Question;

/**
 * The whole job on a MiniCluster (RocksDB, checkpoints every 100 ms) between topics of a real Kafka broker:
 * documents streamed in chunks, questions interleaved, and for every question the answers topic holds exactly
 * the tokens of the engine's single-process Star generation with the same block and anchor sizes.
 */
class StarflinkJobITCase {
    static final int BLOCK = 64;
    static final int ANCHOR = 32;
    static final int MAX_NEW_TOKENS = 12;
    /** Stops with a savepoint that the rescaling test may take before one lands while answers are generated. */
    private static final int RESTORE_ATTEMPTS = 3;

    /** The loop head's counters, kept over every attempt of a job. */
    static final InMemoryReporter METRICS = InMemoryReporter.createWithRetainedMetrics();

    @RegisterExtension
    static final MiniClusterExtension MINI_CLUSTER = new MiniClusterExtension(
            new MiniClusterResourceConfiguration.Builder()
                    .setConfiguration(LoopbackCluster.apply(METRICS.addToConfiguration(new Configuration())))
                    .setNumberTaskManagers(1).setNumberSlotsPerTaskManager(4).build());

    /** A loop-head counter summed over the subtasks and attempts of a job. */
    static long loopHeadCounter(JobClient client, String metric) {
        long sum = 0;
        for (MetricGroup group : METRICS.findOperatorMetricGroups(client.getJobID(), "Loop head.*")) {
            if (METRICS.getMetricsByGroup(group).get(metric) instanceof Counter counter) {
                sum += counter.getCount();
            }
        }
        return sum;
    }

    static EmbeddedKafka kafka;
    static Model model;
    static LongContextGenerator engine;

    /**
     * Checkpoints go under target/: a cancelled job may still be cleaning up its checkpoint files when cancel()
     * returns, which a JUnit temporary folder does not tolerate.
     */
    Path checkpoints = Path.of("target", "checkpoints", java.util.UUID.randomUUID().toString());

    @BeforeAll
    static void start() {
        kafka = EmbeddedKafka.builder().start();
        model = SharedModels.stories260K();
        engine = new LongContextGenerator(model, new Transformer(ModelRegistry.backend(model, BackendKind.DJL)));
    }

    @AfterAll
    static void stop() {
        if (kafka != null) {
            kafka.close();
        }
    }

    static Path modelPath() {
        return SharedModels.stories260KDir().resolve("stories260K.bin");
    }

    /** The block-event logs the test opened, closed after it. */
    final List<BlockEventLog> logs = new ArrayList<>();

    @AfterEach
    void closeLogs() {
        logs.forEach(BlockEventLog::close);
    }

    /** A scenario: documents, then questions about them interleaved with the chunks of later documents. */
    final class Scenario {
        final JobHarness job = new JobHarness(kafka);
        /** What phase 1 did, read from the job's block-events topic through the broker. */
        final BlockEventLog blockEvents = new BlockEventLog(kafka.bootstrapServers(), job.blockEvents);
        final Map<String, String> documents = new LinkedHashMap<>();
        final Map<String, Question> questions = new LinkedHashMap<>();

        Scenario() {
            logs.add(blockEvents);
            for (int d = 0; d < 3; d++) {
                documents.put("doc" + d + "-" + job.suffix, Corpus.document(d, 14 + 4 * d));
            }
        }

        int blocks(String docId) {
            return (engine.contextTokens(documents.get(docId)).length + BLOCK - 1) / BLOCK;
        }

        List<String> blockKeys(String docId) {
            List<String> keys = new ArrayList<>();
            for (int b = 0; b < blocks(docId); b++) {
                keys.add(BlockKeys.of(docId, 1, b, JobHarness.MAX_PARALLELISM));
            }
            return keys;
        }

        /** Streams everything in; returns the answers topic once every question has its final record. */
        Map<String, List<AnswerToken>> run(JobClient client) throws Exception {
            return run(client, () -> { });
        }

        boolean readCommitted;
        /** Whether the answers may repeat tokens: an at-least-once sink through an injected failure. */
        boolean replaysAllowed;
        /** The questions' sampling: greedy unless a test sets temperature > 0 (with top-p and a seed per question). */
        float temperature = 0f;
        float topP = 1f;
        /** The questions' answer length (at most: EOS may come first). */
        int maxNewTokens = MAX_NEW_TOKENS;

        /**
         * @param documentsComplete runs once a completed checkpoint covers every document, before the last two
         *                          questions are asked
         */
        Map<String, List<AnswerToken>> run(JobClient client, Runnable documentsComplete) throws Exception {
            List<String> ids = new ArrayList<>(documents.keySet());
            try (KafkaClient kafkaClient = new KafkaClient(kafka.bootstrapServers())) {
                // Documents 0 and 1 interleaved chunk by chunk, then wait until their blocks are encoded.
                interleave(kafkaClient, Corpus.chunks(ids.get(0), 1, documents.get(ids.get(0)), 37),
                        Corpus.chunks(ids.get(1), 1, documents.get(ids.get(1)), 29));
                awaitEncoded(client, ids.get(0), ids.get(1));
                awaitDocumentsProcessed(kafkaClient, client);
                // Questions about them, interleaved with the chunks of document 2.
                List<DocumentEvent> third = Corpus.chunks(ids.get(2), 1, documents.get(ids.get(2)), 41);
                String[] prompts = {"Lily said", "The ball was", "Once upon a time"};
                int q = 0;
                for (int i = 0; i < third.size(); i++) {
                    kafkaClient.send(job.documents, ids.get(2), third.get(i));
                    if (i % 3 == 0 && q < 6) {
                        ask(kafkaClient, ids.get(q % 2), prompts[q % 3] + "", q++);
                    }
                }
                while (q < 6) {
                    ask(kafkaClient, ids.get(q % 2), prompts[q % 3], q++);
                }
                awaitEncoded(client, ids.get(2));
                awaitDocumentsProcessed(kafkaClient, client);
                documentsComplete.run();
                ask(kafkaClient, ids.get(2), "Lily was sad", q++);
                ask(kafkaClient, ids.get(2), "Her mom said", q);

                return readAnswers(kafkaClient, client);
            }
        }

        /** The answers topic by question, once every question has its final record; fails if the job stopped. */
        Map<String, List<AnswerToken>> readAnswers(KafkaClient kafkaClient, JobClient client) throws Exception {
            return readAnswers(kafkaClient, client, 8);
        }

        Map<String, List<AnswerToken>> readAnswers(KafkaClient kafkaClient, JobClient client, int questionCount)
                throws Exception {
            List<AnswerToken> answers = kafkaClient.readUntil(job.answers, AnswerToken.class,
                    received -> finals(received) == questionCount || jobStopped(client), Duration.ofMinutes(3),
                    readCommitted);
            assertJobRunning(client);
            Map<String, List<AnswerToken>> byQuestion = new HashMap<>();
            for (AnswerToken token : answers) {
                byQuestion.computeIfAbsent(token.getQuestionId(), k -> new ArrayList<>()).add(token);
            }
            return byQuestion;
        }

        void ask(KafkaClient client, String docId, String text, int n) {
            Question question = Corpus.question("q" + n + "-" + job.suffix, docId, text, maxNewTokens);
            question.setTemperature(temperature);
            question.setTopP(topP);
            question.setSeed(1000 + n);
            questions.put(question.getQuestionId(), question);
            client.send(job.questions, question.getQuestionId(), question); // keyed by question_id
        }

        SamplingParams sampling(Question question) {
            return new SamplingParams(maxNewTokens, question.getTemperature(), question.getTopP(),
                    question.getSeed(), List.of());
        }

        private static long finals(List<AnswerToken> answers) {
            return answers.stream().filter(AnswerToken::getFinal$).map(AnswerToken::getQuestionId).distinct().count();
        }

        void interleave(KafkaClient client, List<DocumentEvent> a, List<DocumentEvent> b) {
            for (int i = 0; i < Math.max(a.size(), b.size()); i++) {
                if (i < a.size()) {
                    client.send(job.documents, a.get(i).getDocId(), a.get(i));
                }
                if (i < b.size()) {
                    client.send(job.documents, b.get(i).getDocId(), b.get(i));
                }
            }
        }

        /**
         * Until a completed checkpoint covers every document record: questions asked afterwards see complete
         * documents, also when the job restored from a checkpoint taken while they were still streaming in (a block
         * event says a block was encoded, not that a completed checkpoint holds it). It also means that the
         * (at-least-once) block-events sink flushed every event of those documents' encodes.
         */
        void awaitDocumentsProcessed(KafkaClient kafkaClient, JobClient client) throws Exception {
            long deadline = System.nanoTime() + Duration.ofMinutes(2).toNanos();
            while (!kafkaClient.committedToEnd("it-" + job.suffix, job.documents)) {
                assertJobRunning(client);
                if (System.nanoTime() > deadline) {
                    throw new AssertionError("the job never caught up with the documents topic");
                }
                Thread.sleep(100);
            }
        }

        void awaitEncoded(JobClient client, String... docIds) throws Exception {
            List<String> keys = new ArrayList<>();
            for (String docId : docIds) {
                keys.addAll(blockKeys(docId));
            }
            awaitBlocks(client, keys);
        }

        void awaitBlocks(JobClient client, List<String> keys) throws Exception {
            blockEvents.awaitEncoded(keys, Duration.ofMinutes(2), () -> assertJobRunning(client));
        }

        /** Every question's answer equals the engine's single-process Star answer, token for token. */
        void assertAnswersMatchTheEngine(Map<String, List<AnswerToken>> answers) {
            assertEquals(questions.keySet(), answers.keySet(), "the questions that got an answer");
            for (Question question : questions.values()) {
                int[] expected = engine.generate(engine.contextTokens(documents.get(question.getDocId())),
                        engine.questionTokens(question.getText()), new BlockLayout(BLOCK, ANCHOR),
                        sampling(question), false, t -> { }).tokens();
                List<Integer> actual = tokensByIndex(question.getQuestionId(), answers.get(question.getQuestionId()),
                        replaysAllowed);
                assertEquals(toList(expected), actual, "answer to " + question.getQuestionId());
            }
        }
    }

    /** Cancels the job unless it already stopped (then a test's own assertion says why, not the cancel). */
    static void cancelIfRunning(JobClient client) throws Exception {
        if (!jobStopped(client)) {
            client.cancel().get();
        }
    }

    static boolean jobStopped(JobClient client) {
        try {
            return client.getJobStatus().get().isGloballyTerminalState();
        } catch (Exception e) {
            return true;
        }
    }

    /** The job is still running: it took no more restarts than the test injected failures (see JobHarness). */
    static void assertJobRunning(JobClient client) throws Exception {
        JobStatus status = client.getJobStatus().get();
        if (status.isGloballyTerminalState()) {
            Throwable cause;
            try {
                client.getJobExecutionResult().get();
                cause = null;
            } catch (Exception e) {
                cause = e;
            }
            throw new AssertionError("the job is " + status + " (restarted more often than failures were injected?)",
                    cause);
        }
    }

    /**
     * The answer's token ids by index: every index from 0 to the final one present; an index twice only where
     * {@code replaysAllowed} (an at-least-once replay after an injected failure), and then with the same token.
     */
    static List<Integer> tokensByIndex(String questionId, List<AnswerToken> tokens, boolean replaysAllowed) {
        Map<Integer, AnswerToken> byIndex = new HashMap<>();
        int last = -1;
        for (AnswerToken token : tokens) {
            AnswerToken previous = byIndex.putIfAbsent(token.getIndex(), token);
            if (previous != null) {
                assertTrue(replaysAllowed, questionId + " index " + token.getIndex()
                        + " emitted twice, though no failure was injected");
                assertEquals(previous.getTokenId(), token.getTokenId(), questionId + " index " + token.getIndex()
                        + " replayed with another token");
            }
            if (token.getFinal$()) {
                last = token.getIndex();
            }
        }
        assertTrue(last >= 0, questionId + " has no final record");
        List<Integer> ids = new ArrayList<>();
        for (int i = 0; i <= last; i++) {
            assertTrue(byIndex.containsKey(i), questionId + " is missing index " + i);
            ids.add(byIndex.get(i).getTokenId());
        }
        return ids;
    }

    static List<Integer> toList(int[] values) {
        List<Integer> list = new ArrayList<>();
        for (int v : values) {
            list.add(v);
        }
        return list;
    }

    @ParameterizedTest(name = "parallelism {0}")
    @ValueSource(ints = {1, 2})
    void answersEqualTheEnginesSingleProcessStarGeneration(int parallelism) throws Exception {
        Scenario scenario = new Scenario();
        JobClient client = scenario.job.start(parallelism, checkpoints,
                JobHarness.options(modelPath(), BLOCK, ANCHOR), UnaryOperator.identity(), UnaryOperator.identity());
        try {
            scenario.assertAnswersMatchTheEngine(scenario.run(client));
        } finally {
            cancelIfRunning(client);
        }
    }

    /**
     * The failure fires while the third document is being encoded, at a checkpoint the test holds open
     * ({@link HoldACheckpoint}), so the restore point is known exactly: the first two documents, none of
     * the third. Exactly the third document's blocks encoded before the failure are encoded twice; the restored
     * blocks are not encoded again. Negative control: {@link #negativeControlMidPhaseOneRestoredWithoutBlockState}.
     */
    @Test
    void failureMidPhaseOneReencodesExactlyTheBlocksAfterTheRestoredCheckpoint() throws Exception {
        failMidPhaseOne(null);
    }

    /**
     * Negative control of the test above: the same failure, the job restored from the same checkpoint but
     * without the block operator's state (as if block state were not restored). The test must fail. (Run with
     * {@code -Dstarflink.it.negative-controls=true}; its failure is quoted in docs/reliability.md.)
     */
    @Test
    @EnabledIfSystemProperty(named = NEGATIVE_CONTROLS, matches = "true")
    void negativeControlMidPhaseOneRestoredWithoutBlockState() {
        AssertionError failure = assertThrows(AssertionError.class, () -> failMidPhaseOne("block-operator"));
        report("mid-phase-1 failover without the block operator's state", failure);
        // Observed: only the questions about the third document are answered; the first two documents' blocks are
        // neither restored nor encoded again, so their layer requests wait forever.
        assertTrue(failure.getMessage().startsWith("the questions that got an answer"), failure.getMessage());
    }

    /**
     * @param withoutStateOf null: the job fails over by itself (one restart). Else (a negative control): the failure
     *                       fails the job, and a new job restores the checkpoint the failover would have restored
     *                       (the last one completed) without the state of the operator with this uid.
     */
    private void failMidPhaseOne(String withoutStateOf) throws Exception {
        Scenario scenario = new Scenario();
        scenario.replaysAllowed = true;
        String failure = "phase1-" + scenario.job.suffix;
        Configuration options = JobHarness.options(modelPath(), BLOCK, ANCHOR);
        UnaryOperator<DataStream<AnswerToken>> failing = answers -> answers
                .map(new HoldACheckpoint<AnswerToken>(failure, true)).uid("inject-failure")
                .name("Test: fail holding a checkpoint");
        JobClient client = scenario.job.injectingFailures(withoutStateOf == null ? 1 : 0).start(2, checkpoints,
                options, UnaryOperator.identity(), failing);
        JobClient failed = null;
        List<String> ids = new ArrayList<>(scenario.documents.keySet());
        String third = ids.get(2);
        try (KafkaClient kafkaClient = new KafkaClient(kafka.bootstrapServers())) {
            scenario.interleave(kafkaClient, Corpus.chunks(ids.get(0), 1, scenario.documents.get(ids.get(0)), 37),
                    Corpus.chunks(ids.get(1), 1, scenario.documents.get(ids.get(1)), 29));
            scenario.awaitEncoded(client, ids.get(0), ids.get(1));
            scenario.awaitDocumentsProcessed(kafkaClient, client); // a completed checkpoint holds both documents

            HoldACheckpoint.arm(failure);
            HoldACheckpoint.awaitHolding(failure, Duration.ofMinutes(1)); // no checkpoint completes now
            List<DocumentEvent> chunks = Corpus.chunks(third, 1, scenario.documents.get(third), 41);
            List<DocumentEvent> firstHalf = chunks.subList(0, chunks.size() / 2);
            firstHalf.forEach(chunk -> kafkaClient.send(scenario.job.documents, third, chunk));
            List<String> encodedBeforeTheFailure = scenario.blockKeys(third).subList(0, stableBlocks(firstHalf));
            assertTrue(!encodedBeforeTheFailure.isEmpty() && encodedBeforeTheFailure.size() < scenario.blocks(third),
                    "the failure should fire mid-document: " + encodedBeforeTheFailure);
            scenario.awaitBlocks(client, encodedBeforeTheFailure);
            assertEquals(encodedBeforeTheFailure, scenario.blockEvents.encodedBlocks(third),
                    "blocks of " + third + " encoded at the failure");
            HoldACheckpoint.release(failure); // the job fails over to the checkpoint before the held one
            if (withoutStateOf != null) {
                failed = client;
                scenario.job.restoreFrom = latestCheckpoint(awaitFailed(failed));
                client = scenario.job.startingWithoutStateOf(withoutStateOf).start(2, checkpoints, options,
                        UnaryOperator.identity(), failing);
            }
            HoldACheckpoint.awaitRestored(failure, Duration.ofMinutes(1));

            chunks.subList(firstHalf.size(), chunks.size())
                    .forEach(chunk -> kafkaClient.send(scenario.job.documents, third, chunk));
            scenario.awaitEncoded(client, third);
            scenario.awaitDocumentsProcessed(kafkaClient, client);
            String[] prompts = {"Lily said", "The ball was", "Once upon a time", "Lily was sad"};
            for (int q = 0; q < 8; q++) {
                scenario.ask(kafkaClient, ids.get(q % 3), prompts[q % 4], q);
            }
            scenario.assertAnswersMatchTheEngine(scenario.readAnswers(kafkaClient, client));
            assertTrue(HoldACheckpoint.fired(failure), "the injected failure did not happen");
            awaitACheckpointFromNow(client);
            for (String docId : ids) {
                for (String key : scenario.blockKeys(docId)) {
                    if (encodedBeforeTheFailure.contains(key)) {
                        assertEquals(2, scenario.blockEvents.encodes(key),
                                key + " was encoded after the restored checkpoint: the restore must encode it again");
                    } else {
                        assertEquals(1, scenario.blockEvents.encodes(key), key
                                + (docId.equals(third) ? " was encoded only after the restore, once"
                                        : " was restored from the checkpoint but encoded again"));
                    }
                }
            }
        } finally {
            cancelIfRunning(client);
            if (failed != null) {
                cancelIfRunning(failed);
            }
        }
    }

    static final String NEGATIVE_CONTROLS = "starflink.it.negative-controls";

    /** A negative control failed, as it must: its message goes to the output (and to docs/reliability.md). */
    static void report(String control, AssertionError failure) {
        System.out.println("NEGATIVE CONTROL (" + control + ") failed as it must: " + failure);
    }

    /** Waits until the job failed (it was allowed no restart); returns its id. */
    static JobID awaitFailed(JobClient client) throws Exception {
        JobStatus status = client.getJobStatus().get();
        long deadline = System.nanoTime() + Duration.ofMinutes(1).toNanos();
        while (!status.isGloballyTerminalState()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("the job did not fail: " + status);
            }
            Thread.sleep(50);
            status = client.getJobStatus().get();
        }
        assertEquals(JobStatus.FAILED, status);
        return client.getJobID();
    }

    /** The newest completed checkpoint the job left under {@link #checkpoints} (kept: the job failed). */
    String latestCheckpoint(JobID job) throws java.io.IOException {
        try (var stream = java.nio.file.Files.list(checkpoints.resolve(job.toHexString()))) {
            return stream.filter(dir -> dir.getFileName().toString().startsWith("chk-"))
                    .filter(dir -> java.nio.file.Files.exists(dir.resolve("_metadata")))
                    .max(java.util.Comparator.comparingLong(
                            dir -> Long.parseLong(dir.getFileName().toString().substring(4))))
                    .map(dir -> dir.toAbsolutePath().toUri().toString())
                    .orElseThrow(() -> new AssertionError("no completed checkpoint of " + job));
        }
    }

    /** How many blocks the job emits (and so encodes) for a document of which only these chunks arrived. */
    private static int stableBlocks(List<DocumentEvent> chunks) {
        StringBuilder text = new StringBuilder();
        for (DocumentEvent chunk : chunks) {
            text.append(((DocumentChunk) chunk.getBody()).getText());
        }
        StableBlockCutter cutter = new StableBlockCutter(model.tokenizer(), model.config().bosId(),
                new BlockLayout(BLOCK, ANCHOR), StableBlockCutter.DEFAULT_HOLD_BACK);
        return (cutter.hasExactCuts() // the job's default way, when the tokenizer allows it
                ? cutter.advance(new DocumentTail(), text.toString(), false, StableBlockCutter.Progress.NONE)
                : cutter.advance(text.toString(), false, StableBlockCutter.Progress.NONE)).blocks().size();
    }

    /**
     * Returns once a checkpoint that started after this call completed: the (at-least-once) block-events sink
     * flushed everything the job had emitted by now, so the topic holds every encode so far.
     */
    static void awaitACheckpointFromNow(JobClient client) throws Exception {
        long start = completedCheckpoints(client);
        long deadline = System.nanoTime() + Duration.ofMinutes(1).toNanos();
        // the checkpoint in progress now may have started before this call: the one after it did not
        while (completedCheckpoints(client) < start + 2) {
            assertJobRunning(client);
            if (System.nanoTime() > deadline) {
                throw new AssertionError("no checkpoint completed for a minute");
            }
            Thread.sleep(50);
        }
    }

    private static long completedCheckpoints(JobClient client) {
        return METRICS.findMetric(client.getJobID(), ".*numberOfCompletedCheckpoints")
                .map(metric -> ((Number) ((Gauge<?>) metric).getValue()).longValue())
                .orElseThrow(() -> new AssertionError("no numberOfCompletedCheckpoints metric for the job"));
    }

    /**
     * Sampled answers (temperature 0.8, top-p 0.9, a seed per question) through a failure mid-generation: the
     * replayed tokens and those after the restore equal the engine's single-process sampling with the same seed.
     */
    @Test
    void failureMidGenerationCompletesEveryAnswerWithTheSameSampledTokens() throws Exception {
        Scenario scenario = new Scenario();
        scenario.replaysAllowed = true;
        scenario.temperature = 0.8f;
        scenario.topP = 0.9f;
        String failure = "generation-" + scenario.job.suffix;
        // Fail while answers stream, after a checkpoint taken once every document was complete: a question
        // replayed after the restore then sees the same blocks as the first time (two Kafka sources have no
        // deterministic interleaving, so a replay from an earlier checkpoint could not promise the same catalog).
        JobClient client = scenario.job.injectingFailures(1).start(2, checkpoints,
                JobHarness.options(modelPath(), BLOCK, ANCHOR), UnaryOperator.identity(),
                answers -> answers.map(new FailOnce<AnswerToken>(failure, 5, false)).uid("inject-failure")
                        .name("Test: fail once"));
        try {
            scenario.assertAnswersMatchTheEngine(scenario.run(client, () -> {
                FailOnce.arm(failure);
                FailOnce.awaitReady(failure, Duration.ofMinutes(1)); // the next answers trigger the failure
            }));
            assertEquals(1, FailOnce.failures(failure), "the injected failure did not happen");
            // Whether questions were inside the per-layer loop at the restored checkpoint depends on where the
            // failure lands (a clean-clone run saw none), so it is reported, not asserted here;
            // failureWithQuestionsInTheLoopReplaysTheLoopLog asserts it, and its negative control shows what the
            // loop's log protects.
            System.out.println("failover restored " + loopHeadCounter(client,
                    LoopHeadOperator.METRIC_RESTORED_IN_FLIGHT) + " loop records in flight");
            awaitACheckpointFromNow(client);
            for (String docId : List.copyOf(scenario.documents.keySet()).subList(0, 2)) {
                for (String key : scenario.blockKeys(docId)) {
                    // These blocks were encoded and checkpointed long before the failure: restored, not redone.
                    assertEquals(1, scenario.blockEvents.encodes(key), key + " was encoded again");
                }
            }
        } finally {
            cancelIfRunning(client);
        }
    }

    /**
     * A failure while questions are inside the per-layer loop: the restored checkpoint's loop log holds records
     * that were on the loop's in-JVM feedback edge at the cut (the restored job's loop head reports questions in
     * flight and replays logged records), and every answer completes equal to the engine's. Negative control:
     * {@link #negativeControlFailoverRestoredWithoutTheLoopLogsRecords}.
     */
    @Test
    void failureWithQuestionsInTheLoopReplaysTheLoopLog() throws Exception {
        failWithQuestionsInTheLoop(false);
    }

    /**
     * Negative control of the test above: the same failure, but the job may not restart; a new job restores the
     * checkpoint the failover would have restored with the loop log's records dropped and its in-flight counts kept
     * ({@link LoopLogRecordsDropped}). The test must fail: the questions those records drove are never driven again.
     */
    @Test
    @EnabledIfSystemProperty(named = NEGATIVE_CONTROLS, matches = "true")
    void negativeControlFailoverRestoredWithoutTheLoopLogsRecords() {
        AssertionError failure = assertThrows(AssertionError.class, () -> failWithQuestionsInTheLoop(true));
        report("failover restored without the loop log's records", failure);
        assertTrue(failure.getMessage().contains("has no final record"), failure.getMessage());
    }

    /**
     * @param withoutLoggedRecords false: the job fails over by itself (one restart). True (the negative control):
     *                             the failure fails the job, and a new job restores its newest completed checkpoint
     *                             with the loop log's records dropped.
     */
    private void failWithQuestionsInTheLoop(boolean withoutLoggedRecords) throws Exception {
        Scenario scenario = new Scenario();
        scenario.replaysAllowed = true;
        // still generating at the checkpoint after the first token: answers long enough that faster decoding cannot
        // finish them first (150 new tokens + the longer document fit stories260K's 512-token window)
        scenario.maxNewTokens = 150;
        String failure = "in-the-loop-" + scenario.job.suffix;
        UnaryOperator<DataStream<AnswerToken>> failing = answers -> answers
                .map(new FailOnce<AnswerToken>(failure, 1, false)).uid("inject-failure").name("Test: fail once");
        Configuration options = JobHarness.options(modelPath(), BLOCK, ANCHOR);
        JobClient client = scenario.job.injectingFailures(withoutLoggedRecords ? 0 : 1).start(2, checkpoints,
                options, UnaryOperator.identity(), failing);
        JobClient failed = null;
        List<String> ids = new ArrayList<>(scenario.documents.keySet()).subList(0, 2);
        try (KafkaClient kafkaClient = new KafkaClient(kafka.bootstrapServers())) {
            scenario.interleave(kafkaClient, Corpus.chunks(ids.get(0), 1, scenario.documents.get(ids.get(0)), 37),
                    Corpus.chunks(ids.get(1), 1, scenario.documents.get(ids.get(1)), 29));
            scenario.awaitEncoded(client, ids.get(0), ids.get(1));
            scenario.awaitDocumentsProcessed(kafkaClient, client); // replayed questions see the same catalog
            String[] prompts = {"Lily said", "The ball was", "Once upon a time", "Lily was sad"};
            for (int q = 0; q < 4; q++) {
                scenario.ask(kafkaClient, ids.get(q % 2), prompts[q], q);
            }
            // The questions generate: from the next checkpoint on (its whole cut after this), the next answer
            // record fails the job, so the restored checkpoint is taken while they are in the loop.
            JobClient generating = client;
            kafkaClient.readUntil(scenario.job.answers, AnswerToken.class, received -> !received.isEmpty()
                    || jobStopped(generating), Duration.ofMinutes(1));
            FailOnce.arm(failure);
            FailOnce.awaitReady(failure, Duration.ofMinutes(1));
            if (withoutLoggedRecords) {
                failed = client;
                LoopLogRecordsDropped.Result restore = LoopLogRecordsDropped.rewrite(
                        latestCheckpoint(awaitFailed(failed)), FeedbackLoop.headUid(StarflinkJob.LOOP_ID));
                System.out.println("restoring without the loop log's records: " + restore);
                assertTrue(restore.droppedRecords() > 0, "the restored checkpoint logged no loop record: " + restore);
                scenario.job.restoreFrom = restore.metadata();
                client = scenario.job.start(2, checkpoints, options, UnaryOperator.identity(), failing);
            }
            Map<String, List<AnswerToken>> answers = scenario.readAnswers(kafkaClient, client, 4);
            long restoredInFlight = loopHeadCounter(client, LoopHeadOperator.METRIC_RESTORED_IN_FLIGHT);
            long replayed = loopHeadCounter(client, LoopHeadOperator.METRIC_REPLAYED);
            System.out.println("failover restored " + restoredInFlight + " loop records in flight, replayed "
                    + replayed + " logged feedback records");
            scenario.assertAnswersMatchTheEngine(answers);
            assertEquals(1, FailOnce.failures(failure), "the injected failure did not happen");
            assertTrue(restoredInFlight > 0, "no question was in the loop at the restored checkpoint");
            assertTrue(replayed > 0, "the restored checkpoint's loop log held no record");
        } finally {
            cancelIfRunning(client);
            if (failed != null) {
                cancelIfRunning(failed);
            }
        }
    }

    @Test
    void exactlyOnceAnswersThroughAFailureCarryEveryTokenOnce() throws Exception {
        Scenario scenario = new Scenario();
        scenario.readCommitted = true; // what consumers of the transactional sink see
        String failure = "exactly-once-" + scenario.job.suffix;
        JobClient client = scenario.job.injectingFailures(1).start(2, checkpoints,
                JobHarness.options(modelPath(), BLOCK, ANCHOR), UnaryOperator.identity(),
                answers -> answers.map(new FailOnce<AnswerToken>(failure, 5, false)).uid("inject-failure")
                        .name("Test: fail once"), true);
        try {
            Map<String, List<AnswerToken>> answers = scenario.run(client, () -> {
                FailOnce.arm(failure);
                FailOnce.awaitReady(failure, Duration.ofMinutes(1));
            });
            assertEquals(1, FailOnce.failures(failure), "the injected failure did not happen");
            for (Map.Entry<String, List<AnswerToken>> answer : answers.entrySet()) {
                long distinct = answer.getValue().stream().map(AnswerToken::getIndex).distinct().count();
                assertEquals(answer.getValue().size(), distinct, answer.getKey() + " has a token twice");
            }
            scenario.assertAnswersMatchTheEngine(answers);
        } finally {
            cancelIfRunning(client);
        }
    }

    /**
     * Exactly-once answers become visible to read_committed consumers only when a checkpoint completes: while the
     * test holds a checkpoint open, a whole answer is in the topic (read_uncommitted sees it) and read_committed
     * sees none of it; once the checkpoint completes, read_committed sees all of it, once.
     *
     * <p>Negative control (run once with the at-least-once sink, {@code exactlyOnce = false} below): fails with
     * "read_committed saw 12 tokens of q0-f5a2ac09 while no checkpoint could complete ==> expected: <0> but
     * was: <12>"
     * (quoted in docs/reliability.md).
     */
    @Test
    void exactlyOnceTokensBecomeVisibleOnlyWhenACheckpointCompletes() throws Exception {
        Scenario scenario = new Scenario();
        String hold = "visibility-" + scenario.job.suffix;
        boolean exactlyOnce = true;
        JobClient client = scenario.job.start(2, checkpoints, JobHarness.options(modelPath(), BLOCK, ANCHOR),
                documents -> documents.map(new HoldACheckpoint<KafkaRawRecord>(hold, false)).uid("hold-checkpoint")
                        .name("Test: hold a checkpoint"), UnaryOperator.identity(), exactlyOnce);
        String docId = scenario.documents.keySet().iterator().next();
        try (KafkaClient kafkaClient = new KafkaClient(kafka.bootstrapServers())) {
            Corpus.chunks(docId, 1, scenario.documents.get(docId), 37)
                    .forEach(chunk -> kafkaClient.send(scenario.job.documents, docId, chunk));
            scenario.awaitEncoded(client, docId);
            scenario.awaitDocumentsProcessed(kafkaClient, client);
            HoldACheckpoint.arm(hold);
            HoldACheckpoint.awaitHolding(hold, Duration.ofMinutes(1)); // no checkpoint completes from now on
            scenario.ask(kafkaClient, docId, "Lily said", 0);
            String questionId = scenario.questions.keySet().iterator().next();
            List<AnswerToken> written = kafkaClient.readUntil(scenario.job.answers, AnswerToken.class,
                    received -> received.stream().anyMatch(AnswerToken::getFinal$) || jobStopped(client),
                    Duration.ofMinutes(1), false);
            assertTrue(written.stream().anyMatch(AnswerToken::getFinal$), "the answer was never written: " + written);
            List<AnswerToken> visible = kafkaClient.readUntil(scenario.job.answers, AnswerToken.class,
                    received -> false, Duration.ofSeconds(2), true);
            assertEquals(0, visible.size(), "read_committed saw " + visible.size() + " tokens of " + questionId
                    + " while no checkpoint could complete");

            HoldACheckpoint.release(hold);
            scenario.readCommitted = true;
            scenario.assertAnswersMatchTheEngine(scenario.readAnswers(kafkaClient, client, 1));
        } finally {
            cancelIfRunning(client);
        }
    }

    /**
     * A new version and then a delete of a document arrive while a question about it generates: the question
     * finishes on the version it started on, token for token, and says so; a question asked afterwards finds no
     * document. Versioned block keys and the blocks' retire grace (starflink.block.retire-grace) make that so.
     * Version 2 and the delete are sent once the question's first token is out and its answer is not finished; the
     * question may take every token the window leaves, so it is still generating when they arrive (no sleeps).
     *
     * <p>Negative control (run once with {@code BLOCK_RETIRE_GRACE} 0 ms below, so that replaced blocks retire at
     * once): the running question never gets its final record and the test fails after its 2-minute wait (see
     * docs/reliability.md).
     */
    @Test
    void aNewVersionAndADeleteDoNotDisturbARunningQuestion() throws Exception {
        Scenario scenario = new Scenario();
        Configuration options = JobHarness.options(modelPath(), BLOCK, ANCHOR);
        // The grace counts from a block's last request. The harness's 500 ms is shorter than a stall of a loaded
        // machine between two tokens (observed: a run lost its blocks after 40 of its tokens); 10 s is not, and the
        // production default is 2 minutes. Nothing here waits for the retirement.
        options.set(StarflinkOptions.BLOCK_RETIRE_GRACE, Duration.ofSeconds(10));
        JobClient client = scenario.job.start(2, checkpoints, options, UnaryOperator.identity(),
                UnaryOperator.identity());
        String docId = scenario.documents.keySet().iterator().next();
        String v1 = scenario.documents.get(docId);
        // As long an answer as the model's window leaves room for: the question must still be generating when
        // version 2 and the delete are sent, also on a loaded machine (each token is a pass through the loop).
        int maxNewTokens = model.config().maxPositions() - engine.contextTokens(v1).length
                - engine.questionTokens("Lily said").length - 2;
        int[] expected = engine.generate(engine.contextTokens(v1), engine.questionTokens("Lily said"),
                new BlockLayout(BLOCK, ANCHOR), SamplingParams.greedy(maxNewTokens), false, t -> { }).tokens();
        // (the model ends this answer with EOS after 101 tokens; the test used to ask for 80)
        assertTrue(expected.length >= 100, "the answer over version 1 is only " + expected.length + " tokens of "
                + maxNewTokens);
        try (KafkaClient kafkaClient = new KafkaClient(kafka.bootstrapServers())) {
            Corpus.chunks(docId, 1, v1, 37).forEach(chunk -> kafkaClient.send(scenario.job.documents, docId, chunk));
            scenario.awaitEncoded(client, docId);
            scenario.awaitDocumentsProcessed(kafkaClient, client);
            String running = "running-" + scenario.job.suffix;
            kafkaClient.send(scenario.job.questions, running, Corpus.question(running, docId, "Lily said",
                    maxNewTokens));
            // Until the question generates: its first token is out.
            List<AnswerToken> started = kafkaClient.readUntil(scenario.job.answers, AnswerToken.class,
                    received -> !received.isEmpty() || jobStopped(client), Duration.ofMinutes(1));
            assertJobRunning(client);
            assertTrue(started.stream().noneMatch(AnswerToken::getFinal$), running + " finished before version 2 "
                    + "and the delete were sent: " + started.size() + " records");
            // The question is generating: replace the document (one chunk, the whole of version 2), then delete it.
            String v2 = Corpus.document(7, 12);
            Corpus.chunks(docId, 2, v2, v2.length())
                    .forEach(chunk -> kafkaClient.send(scenario.job.documents, docId, chunk));
            kafkaClient.send(scenario.job.documents, docId, DocumentEvent.newBuilder().setDocId(docId).setVersion(2)
                    .setBody(DocumentDelete.newBuilder().build()).build());
            long deletedMs = System.currentTimeMillis();
            scenario.awaitDocumentsProcessed(kafkaClient, client);
            String after = "after-delete-" + scenario.job.suffix;
            kafkaClient.send(scenario.job.questions, after, Corpus.question(after, docId, "Lily said", 8));

            List<AnswerToken> answers = kafkaClient.readUntil(scenario.job.answers, AnswerToken.class,
                    received -> Scenario.finals(received) == 2 || jobStopped(client), Duration.ofMinutes(2));
            assertJobRunning(client);
            List<AnswerToken> runningAnswer = answers.stream().filter(a -> a.getQuestionId().equals(running))
                    .toList();
            AnswerToken last = runningAnswer.stream().filter(AnswerToken::getFinal$).findFirst()
                    .orElseThrow(() -> new AssertionError(running + " never finished (" + runningAnswer.size()
                            + " of its records arrived): its blocks went away under it"));
            assertTrue(last.getEmittedMs() > deletedMs, "the question should still be generating when the delete "
                    + "is sent; make it longer");
            System.out.println(running + ": " + runningAnswer.size() + " records, the last "
                    + (last.getEmittedMs() - deletedMs) + " ms after the delete was confirmed");
            assertEquals(toList(expected), tokensByIndex(running, runningAnswer, false),
                    "the running question's answer over version 1");
            assertEquals(1, last.getCoverage().getVersion(), "coverage of the running question");
            AnswerToken afterDelete = answers.stream().filter(a -> a.getQuestionId().equals(after)).findFirst()
                    .orElseThrow();
            assertEquals("unknown document " + docId, afterDelete.getError());
        } finally {
            cancelIfRunning(client);
        }
    }

    /**
     * Stop with a savepoint at parallelism 2 while questions generate, restore at parallelism 1: the questions
     * inside the loop are restored (its log is kept per key group), their answers complete equal to the engine's,
     * and no block is encoded again (block KV moves with its key groups).
     *
     * <p>Negative control (run once starting the second job without the savepoint, {@code restoreFrom = null}):
     * "q0-de2a5aec index 0 replayed with another token ==> expected: <432> but was: <-1>" (the questions, read
     * again from the start, met an empty catalog). The two restores without one operator's state below are
     * controls of their own.
     */
    @Test
    void restoresAtAnotherParallelismWithQuestionsInTheLoop() throws Exception {
        // Whether answers are still being generated when the stop's savepoint completes is a race with the stop (a
        // loaded machine slows the savepoint, faster decoding finishes 150 tokens sooner): an attempt whose answers
        // were all complete proves nothing about the restored blocks and is repeated with fresh questions.
        for (int attempt = 1; !restoreAtAnotherParallelism(null); attempt++) {
            assertTrue(attempt < RESTORE_ATTEMPTS, "every answer was complete before the savepoint in "
                    + RESTORE_ATTEMPTS + " attempts: nothing generated after the restore");
            System.out.println("rescale, attempt " + attempt + ": every answer was complete before the savepoint");
        }
    }

    /**
     * Negative control of the test above: the second job restores the savepoint without the loop head's state
     * (the questions in the loop at the savepoint, and its log). The test must fail (see docs/reliability.md).
     */
    @Test
    @EnabledIfSystemProperty(named = NEGATIVE_CONTROLS, matches = "true")
    void negativeControlRescaleRestoredWithoutLoopHeadState() {
        AssertionError failure = assertThrows(AssertionError.class,
                () -> restoreAtAnotherParallelism(FeedbackLoop.headUid(StarflinkJob.LOOP_ID)));
        report("rescale without the loop head's state", failure);
        // Observed: the questions that were in the loop are never driven again.
        assertTrue(failure.getMessage().contains("has no final record"), failure.getMessage());
    }

    /** Negative control of the test above: the second job restores the savepoint without the blocks' state. */
    @Test
    @EnabledIfSystemProperty(named = NEGATIVE_CONTROLS, matches = "true")
    void negativeControlRescaleRestoredWithoutBlockState() {
        AssertionError failure = assertThrows(AssertionError.class,
                () -> restoreAtAnotherParallelism("block-operator"));
        report("rescale without the block operator's state", failure);
        // Observed: the questions' layer requests wait for blocks that are neither restored nor encoded again.
        assertTrue(failure.getMessage().contains("has no final record"), failure.getMessage());
    }

    /**
     * @param withoutStateOf null, or (a negative control) the uid of the operator the restore leaves empty
     * @return whether the second job generated tokens (else every answer was complete before the savepoint, and the
     *     checks after the restore passed without reading the restored blocks)
     */
    private boolean restoreAtAnotherParallelism(String withoutStateOf) throws Exception {
        Scenario scenario = new Scenario();
        // still generating when the savepoint is taken (64 tokens once all finished while the stop was in progress)
        scenario.maxNewTokens = 150;
        scenario.replaysAllowed = true; // at-least-once answers: tokens after the savepoint's cut may come twice
        List<String> ids = new ArrayList<>(scenario.documents.keySet()).subList(0, 2);
        Configuration options = JobHarness.options(modelPath(), BLOCK, ANCHOR);
        JobClient first = scenario.job.start(2, checkpoints, options, UnaryOperator.identity(),
                UnaryOperator.identity());
        JobClient second = null;
        try (KafkaClient kafkaClient = new KafkaClient(kafka.bootstrapServers())) {
            scenario.interleave(kafkaClient, Corpus.chunks(ids.get(0), 1, scenario.documents.get(ids.get(0)), 37),
                    Corpus.chunks(ids.get(1), 1, scenario.documents.get(ids.get(1)), 29));
            scenario.awaitEncoded(first, ids.get(0), ids.get(1));
            scenario.awaitDocumentsProcessed(kafkaClient, first);
            String[] prompts = {"Lily said", "The ball was", "Once upon a time", "Lily was sad"};
            for (int q = 0; q < 4; q++) {
                scenario.ask(kafkaClient, ids.get(q % 2), prompts[q], q);
            }
            kafkaClient.readUntil(scenario.job.answers, AnswerToken.class, received -> !received.isEmpty()
                    || jobStopped(first), Duration.ofMinutes(1));
            String savepoint = first.stopWithSavepoint(false, checkpoints.resolve("savepoints").toAbsolutePath()
                    .toUri().toString(), SavepointFormatType.CANONICAL).get();
            long stoppedMs = System.currentTimeMillis(); // the first job is gone: later tokens are the second's

            scenario.job.restoreFrom = savepoint;
            if (withoutStateOf != null) {
                scenario.job.startingWithoutStateOf(withoutStateOf);
            }
            second = scenario.job.start(1, checkpoints, options, UnaryOperator.identity(), UnaryOperator.identity());
            Map<String, List<AnswerToken>> answers = scenario.readAnswers(kafkaClient, second, 4);
            scenario.assertAnswersMatchTheEngine(answers);
            assertTrue(loopHeadCounter(second, LoopHeadOperator.METRIC_RESTORED_IN_FLIGHT) > 0,
                    "no question was in the loop at the savepoint");
            awaitACheckpointFromNow(second);
            for (String docId : ids) {
                for (String key : scenario.blockKeys(docId)) {
                    assertEquals(1, scenario.blockEvents.encodes(key), key + " was encoded again after rescaling");
                }
            }
            // Every token of the second job took one pass over the restored blocks (a restore with every answer
            // already complete would not need them, and would prove nothing about them).
            return answers.values().stream().flatMap(List::stream).anyMatch(t -> t.getEmittedMs() > stoppedMs);
        } finally {
            cancelIfRunning(first);
            if (second != null) {
                cancelIfRunning(second);
            }
        }
    }
}
