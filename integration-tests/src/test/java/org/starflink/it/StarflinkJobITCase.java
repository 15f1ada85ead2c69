package org.starflink.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
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
import org.apache.flink.api.common.JobStatus;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.runtime.testutils.MiniClusterResourceConfiguration;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.test.junit5.MiniClusterExtension;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
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
import org.starflink.kafka.EmbeddedKafka;
import org.starflink.operators.block.BlockOperator;
import org.starflink.operators.kafka.KafkaRawRecord;
import org.starflink.operators.messages.BlockKeys;
import org.starflink.schemas.AnswerToken;
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

    @RegisterExtension
    static final MiniClusterExtension MINI_CLUSTER = new MiniClusterExtension(
            new MiniClusterResourceConfiguration.Builder().setNumberTaskManagers(1).setNumberSlotsPerTaskManager(4)
                    .build());

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

    /** A scenario: documents, then questions about them interleaved with the chunks of later documents. */
    final class Scenario {
        final JobHarness job = new JobHarness(kafka);
        final Map<String, String> documents = new LinkedHashMap<>();
        final Map<String, Question> questions = new LinkedHashMap<>();

        Scenario() {
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
                keys.add(BlockKeys.of(docId, 1, b));
            }
            return keys;
        }

        /** Streams everything in; returns the answers topic once every question has its final record. */
        Map<String, List<AnswerToken>> run(JobClient client) throws Exception {
            return run(client, () -> { });
        }

        boolean readCommitted;

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

                List<AnswerToken> answers = kafkaClient.readUntil(job.answers, AnswerToken.class,
                        this::allFinal, Duration.ofMinutes(3), readCommitted);
                Map<String, List<AnswerToken>> byQuestion = new HashMap<>();
                for (AnswerToken token : answers) {
                    byQuestion.computeIfAbsent(token.getQuestionId(), k -> new ArrayList<>()).add(token);
                }
                return byQuestion;
            }
        }

        private void ask(KafkaClient client, String docId, String text, int n) {
            Question question = Corpus.question("q" + n + "-" + job.suffix, docId, text, MAX_NEW_TOKENS);
            questions.put(question.getQuestionId(), question);
            client.send(job.questions, question.getQuestionId(), question); // keyed by question_id
        }

        private boolean allFinal(List<AnswerToken> answers) {
            long finals = answers.stream().filter(AnswerToken::getFinal$).map(AnswerToken::getQuestionId)
                    .distinct().count();
            return finals == 8;
        }

        private void interleave(KafkaClient client, List<DocumentEvent> a, List<DocumentEvent> b) {
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
         * documents, also when the job restored from a checkpoint taken while they were still streaming in (the
         * encode counters below are JVM-wide and would not tell).
         */
        private void awaitDocumentsProcessed(KafkaClient kafkaClient, JobClient client) throws Exception {
            long deadline = System.nanoTime() + Duration.ofMinutes(2).toNanos();
            while (!kafkaClient.committedToEnd("it-" + job.suffix, job.documents)) {
                if (client.getJobStatus().get().isGloballyTerminalState() || System.nanoTime() > deadline) {
                    throw new AssertionError("the job never caught up with the documents topic");
                }
                Thread.sleep(100);
            }
        }

        private void awaitEncoded(JobClient client, String... docIds) throws Exception {
            long deadline = System.nanoTime() + Duration.ofMinutes(2).toNanos();
            for (String docId : docIds) {
                for (String key : blockKeys(docId)) {
                    while (!BlockOperator.ENCODES.containsKey(key)) {
                        JobStatus status = client.getJobStatus().get();
                        if (status.isGloballyTerminalState() || System.nanoTime() > deadline) {
                            throw new AssertionError("block " + key + " never encoded; job " + status);
                        }
                        Thread.sleep(50);
                    }
                }
            }
        }

        /** Every question's answer equals the engine's single-process Star answer, token for token. */
        void assertAnswersMatchTheEngine(Map<String, List<AnswerToken>> answers) {
            assertEquals(questions.keySet(), answers.keySet());
            for (Question question : questions.values()) {
                int[] expected = engine.generate(engine.contextTokens(documents.get(question.getDocId())),
                        engine.questionTokens(question.getText()), new BlockLayout(BLOCK, ANCHOR),
                        SamplingParams.greedy(MAX_NEW_TOKENS), false, t -> { }).tokens();
                List<Integer> actual = tokensByIndex(question.getQuestionId(), answers.get(question.getQuestionId()));
                assertEquals(toList(expected), actual, "answer to " + question.getQuestionId());
            }
        }
    }

    /**
     * The answer's token ids by index: every index from 0 to the final one present, duplicates (an at-least-once
     * replay) identical.
     */
    static List<Integer> tokensByIndex(String questionId, List<AnswerToken> tokens) {
        Map<Integer, AnswerToken> byIndex = new HashMap<>();
        int last = -1;
        for (AnswerToken token : tokens) {
            AnswerToken previous = byIndex.putIfAbsent(token.getIndex(), token);
            if (previous != null) {
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
            client.cancel().get();
        }
    }

    @Test
    void failureMidPhaseOneLosesNothingAndDoesNotReencodeRestoredBlocks() throws Exception {
        Scenario scenario = new Scenario();
        String failure = "phase1-" + scenario.job.suffix;
        // Fail once, after a checkpoint completed, when two thirds of the first two documents' chunks went by.
        int chunks = Corpus.chunks("x", 1, scenario.documents.values().iterator().next(), 37).size();
        JobClient client = scenario.job.start(2, checkpoints, JobHarness.options(modelPath(), BLOCK, ANCHOR),
                documents -> documents.map(new FailOnce<KafkaRawRecord>(failure, chunks))
                        .uid("inject-failure").name("Test: fail once"),
                UnaryOperator.identity());
        try {
            scenario.assertAnswersMatchTheEngine(scenario.run(client));
            assertEquals(1, FailOnce.failures(failure), "the injected failure did not happen");
            int encodes = 0;
            int blocks = 0;
            for (String docId : scenario.documents.keySet()) {
                for (String key : scenario.blockKeys(docId)) {
                    encodes += BlockOperator.ENCODES.get(key).get();
                    blocks++;
                }
            }
            // Blocks in the restored checkpoint are not encoded again; only those encoded after it may be.
            assertTrue(encodes < 2 * blocks, encodes + " encodes for " + blocks + " blocks");
        } finally {
            client.cancel().get();
        }
    }

    @Test
    void failureMidGenerationCompletesEveryAnswerWithTheSameTokens() throws Exception {
        Scenario scenario = new Scenario();
        String failure = "generation-" + scenario.job.suffix;
        // Fail while answers stream, after a checkpoint taken once every document was complete: a question
        // replayed after the restore then sees the same blocks as the first time (two Kafka sources have no
        // deterministic interleaving, so a replay from an earlier checkpoint could not promise the same catalog).
        JobClient client = scenario.job.start(2, checkpoints, JobHarness.options(modelPath(), BLOCK, ANCHOR),
                UnaryOperator.identity(),
                answers -> answers.map(new FailOnce<AnswerToken>(failure, 5, false)).uid("inject-failure")
                        .name("Test: fail once"));
        try {
            scenario.assertAnswersMatchTheEngine(scenario.run(client, () -> {
                FailOnce.arm(failure);
                FailOnce.awaitReady(failure, Duration.ofMinutes(1)); // the next answers trigger the failure
            }));
            assertEquals(1, FailOnce.failures(failure), "the injected failure did not happen");
            for (String docId : List.copyOf(scenario.documents.keySet()).subList(0, 2)) {
                for (String key : scenario.blockKeys(docId)) {
                    // These blocks were encoded and checkpointed long before the failure: restored, not redone.
                    assertEquals(1, BlockOperator.ENCODES.get(key).get(), key + " was encoded again");
                }
            }
        } finally {
            client.cancel().get();
        }
    }

    @Test
    void exactlyOnceAnswersThroughAFailureCarryEveryTokenOnce() throws Exception {
        Scenario scenario = new Scenario();
        scenario.readCommitted = true; // what consumers of the transactional sink see
        String failure = "exactly-once-" + scenario.job.suffix;
        JobClient client = scenario.job.start(2, checkpoints, JobHarness.options(modelPath(), BLOCK, ANCHOR),
                UnaryOperator.identity(),
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
            client.cancel().get();
        }
    }
}
