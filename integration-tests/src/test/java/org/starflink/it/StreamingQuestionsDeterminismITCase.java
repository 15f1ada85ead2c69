package org.starflink.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.UUID;
import java.util.function.UnaryOperator;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.runtime.testutils.MiniClusterResourceConfiguration;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.operators.AbstractStreamOperator;
import org.apache.flink.streaming.api.operators.OneInputStreamOperator;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.test.junit5.MiniClusterExtension;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.starflink.engine.backend.BackendKind;
import org.starflink.engine.checkpoint.ModelRegistry;
import org.starflink.engine.forward.Transformer;
import org.starflink.engine.generate.SamplingParams;
import org.starflink.engine.model.Model;
import org.starflink.engine.star.BlockLayout;
import org.starflink.engine.star.LongContextGenerator;
import org.starflink.engine.testing.SharedModels;
import org.starflink.kafka.EmbeddedKafka;
import org.starflink.operators.cluster.LoopbackCluster;
import org.starflink.operators.document.DocumentTail;
import org.starflink.operators.document.StableBlockCutter;
import org.starflink.operators.kafka.KafkaRawRecord;
import org.starflink.operators.messages.BlockKeys;
import org.starflink.schemas.AnswerToken;
import org.starflink.schemas.Coverage;
import org.starflink.schemas.DocumentChunk;
import org.starflink.schemas.DocumentEvent;
import org.starflink.schemas.Question;
import org.starflink.schemas.RejectedRecord;

/**
 * Issue 12, scenario 6: questions asked while their document is still streaming in get the same answer through a
 * failover as without one. The test writes the log itself, with explicit Kafka timestamps: chunk i of the document
 * at T0 + 1 s * i, questions in between. Some questions are sent as soon as they are produced (right after the
 * chunk before them); others are sent late, with an older timestamp, once the job has encoded blocks of later
 * chunks: what a replayed question meets after a failover. The failure: a checkpoint is held
 * ({@link HoldACheckpoint}) from before the first question until after the first late one and then fails, while
 * chunks are still arriving; the job restores the checkpoint before it and reads every question and most chunks
 * again, interleaved anew. Every question's answer (tokens and coverage) must equal the failure-free run's, the
 * catalog the log gives it (the blocks of the chunks up to its timestamp, cut with the job's own
 * {@link StableBlockCutter}) and the engine's single-process Star answer over that prefix.
 */
class StreamingQuestionsDeterminismITCase {
    static final int BLOCK = 64;
    static final int ANCHOR = 32;
    static final int MAX_NEW_TOKENS = 12;
    static final int CHUNK_CHARS = 23;

    @RegisterExtension
    static final MiniClusterExtension MINI_CLUSTER = new MiniClusterExtension(
            new MiniClusterResourceConfiguration.Builder()
                    .setConfiguration(LoopbackCluster.apply(new Configuration()))
                    .setNumberTaskManagers(1).setNumberSlotsPerTaskManager(4).build());

    static EmbeddedKafka kafka;
    static Model model;
    static LongContextGenerator engine;

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

    /** A question of the log: its timestamp, and after which chunk the test sends it. */
    record Asked(Question question, long timestamp, int sentAfterChunk) {
    }

    /** What a question got: its tokens (replays removed) and its coverage. */
    record Answer(List<Integer> tokens, Coverage coverage) {
    }

    /** The log: one document in chunks and the questions about it, with their Kafka timestamps. */
    static final class Log {
        final LongContextGenerator engine;
        final String docId = "doc-" + UUID.randomUUID().toString().substring(0, 8);
        final String text = Corpus.document(5, 18);
        final List<DocumentEvent> chunks = Corpus.chunks(docId, 1, text, CHUNK_CHARS);
        final long t0 = System.currentTimeMillis() - Duration.ofMinutes(10).toMillis();
        final List<Asked> questions = new ArrayList<>();
        /** Blocks out after chunks 0..i, as the job's cutter forms them (the short last one with the last chunk). */
        final int[] blocksAfterChunk = new int[chunks.size()];
        final int contextTokens;

        Log(Model model, LongContextGenerator engine) {
            this.engine = engine;
            this.contextTokens = engine.contextTokens(text).length;
            StableBlockCutter cutter = new StableBlockCutter(model.tokenizer(), model.config().bosId(),
                    new BlockLayout(BLOCK, ANCHOR), StableBlockCutter.DEFAULT_HOLD_BACK);
            StringBuilder prefix = new StringBuilder();
            for (int i = 0; i < chunks.size(); i++) {
                prefix.append(((DocumentChunk) chunks.get(i).getBody()).getText());
                blocksAfterChunk[i] = cutter.advance(new DocumentTail(), prefix.toString(), i == chunks.size() - 1,
                        StableBlockCutter.Progress.NONE).blocks().size();
            }
            int c = chunks.size();
            int first = 0; // the first chunk after which a block is out: questions before it get an error
            while (blocksAfterChunk[first] == 0) {
                first++;
            }
            int span = c - 1 - first;
            String[] prompts = {"Lily said", "The ball was", "Once upon a time", "Her mom said"};
            // Asked as produced, while the document streams in (each waits for the next chunk) ...
            int[] onTime = {first, first + span / 5, first + 2 * span / 5, first + 3 * span / 5};
            // ... and late: sent after later chunks were encoded, with the timestamp of an earlier moment.
            int[][] late = {{first + span / 5 + 1, first + 3 * span / 5 + 2}, {first + 2 * span / 5 + 1, c - 1}};
            for (int[] pair : late) {
                if (blocksAfterChunk[pair[0]] >= blocksAfterChunk[pair[1]]) {
                    throw new IllegalStateException("a late question must have fewer blocks in its prefix than "
                            + "exist when it is sent: " + Arrays.toString(blocksAfterChunk));
                }
            }
            int n = 0;
            for (int k : onTime) {
                questions.add(new Asked(question(n, prompts[n % 4]), chunkTime(k) + 500, k));
                n++;
            }
            for (int[] pair : late) {
                questions.add(new Asked(question(n, prompts[n % 4]), chunkTime(pair[0]) + 500, pair[1]));
                n++;
            }
            questions.add(new Asked(question(n, prompts[n % 4]), chunkTime(c - 1) + 500, c - 1)); // complete
        }

        long chunkTime(int seq) {
            return t0 + 1000L * seq;
        }

        Question question(int n, String text) {
            return Corpus.question("q" + n + "-" + docId, docId, text, MAX_NEW_TOKENS);
        }

        /** The last chunk whose timestamp is at most {@code timestamp}. */
        int lastChunkUpTo(long timestamp) {
            return (int) Math.min(chunks.size() - 1, (timestamp - t0) / 1000);
        }

        /** The coverage the log gives a question: the blocks of the chunks up to its timestamp. */
        Coverage expectedCoverage(Asked asked) {
            int last = lastChunkUpTo(asked.timestamp());
            int blocks = blocksAfterChunk[last];
            boolean complete = last == chunks.size() - 1;
            return new Coverage(1L, blocks, complete ? contextTokens : blocks * BLOCK, complete);
        }
    }

    /** Takes the Kafka timestamps off the records: the document operator then admits by the old rule. */
    static final class EraseTimestamps extends AbstractStreamOperator<KafkaRawRecord>
            implements OneInputStreamOperator<KafkaRawRecord, KafkaRawRecord> {
        @Override
        public void processElement(StreamRecord<KafkaRawRecord> element) {
            element.eraseTimestamp();
            output.collect(element);
        }
    }

    @Test
    void questionsAskedWhileTheirDocumentStreamsInGetTheSameAnswersThroughAFailover() throws Exception {
        Log log = new Log(model, engine);
        Map<String, Answer> failureFree = run(log, false, false);
        assertAnswersFollowTheLog(log, failureFree);
        Map<String, Answer> throughFailover = run(log, true, false);
        assertAnswersFollowTheLog(log, throughFailover);
        assertEquals(failureFree, throughFailover, "answers with and without the failover");
    }

    /**
     * Negative control: the same scenario with the questions' timestamps taken off in the test's copy of the
     * topology, so that the document operator admits every question over the blocks that exist when it arrives
     * (the rule before this change). Must fail on the coverage of a late question.
     */
    @Test
    @EnabledIfSystemProperty(named = StarflinkJobITCase.NEGATIVE_CONTROLS, matches = "true")
    void negativeControlQuestionsAdmittedOverTheBlocksThatExistWhenTheyArrive() {
        AssertionError failure = assertThrows(AssertionError.class, () -> {
            Log log = new Log(model, engine);
            assertAnswersFollowTheLog(log, run(log, true, true));
        });
        assertTrue(failure.getMessage().contains("coverage of the answers differs")
                || failure.getMessage().contains("replays included, has the same coverage")
                || failure.getMessage().contains("replayed with another token"), failure.getMessage());
        StarflinkJobITCase.report("old admission rule", failure);
    }

    /** The answers' coverage and tokens are those the log gives each question (and at least 5 see part of it). */
    static void assertAnswersFollowTheLog(Log log, Map<String, Answer> answers) {
        assertEquals(log.questions.stream().map(a -> a.question().getQuestionId()).sorted().toList(),
                answers.keySet().stream().sorted().toList(), "the questions that got an answer");
        // Every coverage first, so that a failure names all questions whose catalog differs from the log's.
        List<String> wrong = new ArrayList<>();
        for (Asked asked : log.questions) {
            String id = asked.question().getQuestionId();
            Coverage expected = log.expectedCoverage(asked);
            Coverage actual = answers.get(id).coverage();
            if (!expected.equals(actual)) {
                wrong.add(id + " (timestamp after chunk " + log.lastChunkUpTo(asked.timestamp())
                        + ", sent after chunk " + asked.sentAfterChunk() + "): expected " + describe(expected)
                        + " but was " + describe(actual));
            }
        }
        assertEquals(List.of(), wrong, "coverage of the answers differs from the blocks of the chunks up to "
                + "their timestamps");
        int full = 0;
        int partial = 0;
        for (Asked asked : log.questions) {
            String id = asked.question().getQuestionId();
            Coverage expected = log.expectedCoverage(asked);
            Answer answer = answers.get(id);
            int[] context = Arrays.copyOf(log.engine.contextTokens(log.text), expected.getTokens());
            int[] star = log.engine.generate(context, log.engine.questionTokens(asked.question().getText()),
                    new BlockLayout(BLOCK, ANCHOR), new SamplingParams(MAX_NEW_TOKENS, 0f, 1f, 0, List.of()), false,
                    t -> { }).tokens();
            assertEquals(StarflinkJobITCase.toList(star), answer.tokens(), "answer to " + id);
            if (expected.getDocumentComplete()) {
                full++;
            } else {
                partial++;
            }
        }
        assertTrue(partial >= 5 && full >= 1, "questions over part of the document: " + partial + ", over all: "
                + full);
    }

    static String describe(Coverage coverage) {
        return coverage == null ? "none (an error answer)" : coverage.getBlocks() + " blocks / "
                + coverage.getTokens() + " tokens" + (coverage.getDocumentComplete() ? ", complete" : "");
    }

    /**
     * Streams the log into a job of its own; returns every question's answer.
     *
     * @param failover       hold a checkpoint from before the first question, fail it while chunks still arrive
     * @param withoutTimestamps the negative control: the questions' timestamps taken off in the test's topology
     */
    Map<String, Answer> run(Log log, boolean failover, boolean withoutTimestamps) throws Exception {
        JobHarness job = new JobHarness(kafka).injectingFailures(failover ? 1 : 0);
        String failure = "streaming-questions-" + job.suffix;
        Path checkpoints = Path.of("target", "checkpoints", UUID.randomUUID().toString());
        // The failure: a checkpoint held from before the first question until mid-stream, then failed, so the job
        // restores the checkpoint before it and reads every question and most chunks again. It is held in the
        // rejected records' task, through which nothing flows here: answers reach the topic meanwhile, and the
        // replays after the restore must repeat them (at-least-once).
        if (failover) {
            job.wrappingRejected(rejected -> rejected.map(new HoldACheckpoint<RejectedRecord>(failure, true))
                    .uid("inject-failure").name("Test: hold a checkpoint, then fail"));
        }
        UnaryOperator<DataStream<KafkaRawRecord>> aroundQuestions = !withoutTimestamps ? UnaryOperator.identity()
                : questions -> questions.transform("Test: erase timestamps", questions.getType(),
                        new EraseTimestamps()).uid("erase-timestamps");
        JobClient client = job.start(1, checkpoints, JobHarness.options(StarflinkJobITCase.modelPath(), BLOCK, ANCHOR),
                UnaryOperator.identity(), aroundQuestions, UnaryOperator.identity(), false);
        try (KafkaClient kafkaClient = new KafkaClient(kafka.bootstrapServers());
             BlockEventLog blockEvents = new BlockEventLog(kafka.bootstrapServers(), job.blockEvents)) {
            int c = log.chunks.size();
            int first = log.questions.get(0).sentAfterChunk();
            int failAfterChunk = log.questions.get(4).sentAfterChunk() + 1; // after the first late question
            for (int i = 0; i < c; i++) {
                if (failover && i == first) {
                    HoldACheckpoint.arm(failure);
                    HoldACheckpoint.awaitHolding(failure, Duration.ofMinutes(1)); // no checkpoint completes now
                }
                kafkaClient.sendAt(job.documents, log.docId, log.chunks.get(i), log.chunkTime(i));
                for (Asked asked : log.questions) {
                    if (asked.sentAfterChunk() == i) {
                        if (asked.timestamp() < log.chunkTime(i)) {
                            // A late question: the job has the blocks of later chunks when it arrives.
                            awaitBlocks(blockEvents, client, log, log.blocksAfterChunk[i]);
                        }
                        kafkaClient.sendAt(job.questions, asked.question().getQuestionId(), asked.question(),
                                asked.timestamp());
                    }
                }
                if (failover && i == failAfterChunk) {
                    HoldACheckpoint.release(failure); // fails over to the checkpoint before the first question
                }
                Thread.sleep(150); // checkpoints every 100 ms: the failure comes while chunks still arrive
            }
            List<AnswerToken> records = kafkaClient.readUntil(job.answers, AnswerToken.class,
                    received -> finals(received) == log.questions.size() || StarflinkJobITCase.jobStopped(client),
                    Duration.ofMinutes(3));
            StarflinkJobITCase.assertJobRunning(client);
            if (failover) {
                assertTrue(HoldACheckpoint.fired(failure), "the injected failure did not happen");
                assertTrue(failAfterChunk < c - 1, "the failure comes while chunks still arrive");
            }
            long replays = records.size() - records.stream().map(t -> t.getQuestionId() + "#" + t.getIndex())
                    .distinct().count();
            System.out.println("streaming questions: " + c + " chunks, blocks after each " + Arrays.toString(
                    log.blocksAfterChunk)
                    + (failover ? ", checkpoint held from chunk " + first + ", failed after chunk "
                    + failAfterChunk : "")
                    + ", " + records.size() + " answer records, " + replays + " replayed");
            return answers(records, failover);
        } finally {
            StarflinkJobITCase.cancelIfRunning(client);
        }
    }

    /**
     * Each question's answer from the answers topic's records: its tokens by index (a replay only where
     * {@code replaysAllowed}, and then with the same token) and its coverage, the same on every record.
     */
    static Map<String, Answer> answers(List<AnswerToken> records, boolean replaysAllowed) {
        Map<String, List<AnswerToken>> byQuestion = new TreeMap<>();
        for (AnswerToken token : records) {
            byQuestion.computeIfAbsent(token.getQuestionId(), k -> new ArrayList<>()).add(token);
        }
        Map<String, Answer> answers = new LinkedHashMap<>();
        for (var entry : byQuestion.entrySet()) {
            List<AnswerToken> tokens = entry.getValue();
            for (AnswerToken token : tokens) {
                assertEquals(tokens.get(0).getCoverage(), token.getCoverage(), entry.getKey()
                        + ": every record of an answer, replays included, has the same coverage");
            }
            answers.put(entry.getKey(), new Answer(
                    StarflinkJobITCase.tokensByIndex(entry.getKey(), tokens, replaysAllowed),
                    tokens.get(0).getCoverage()));
        }
        return answers;
    }

    static void awaitBlocks(BlockEventLog blockEvents, JobClient client, Log log, int blocks) throws Exception {
        awaitBlocks(blockEvents, log, blocks, () -> StarflinkJobITCase.assertJobRunning(client));
    }

    static void awaitBlocks(BlockEventLog blockEvents, Log log, int blocks, BlockEventLog.Check check)
            throws Exception {
        List<String> keys = new ArrayList<>();
        for (int b = 0; b < blocks; b++) {
            keys.add(BlockKeys.of(log.docId, 1, b, JobHarness.MAX_PARALLELISM));
        }
        blockEvents.awaitEncoded(keys, Duration.ofMinutes(2), check);
    }

    static long finals(List<AnswerToken> answers) {
        return answers.stream().filter(AnswerToken::getFinal$).map(AnswerToken::getQuestionId).distinct().count();
    }
}
