package org.starflink.it;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import java.util.function.UnaryOperator;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.runtime.testutils.MiniClusterResourceConfiguration;
import org.apache.flink.test.junit5.MiniClusterExtension;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
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
import org.starflink.pipeline.client.StarflinkClient;
import org.starflink.operators.messages.BlockKeys;
import org.starflink.schemas.AnswerToken;
import org.starflink.schemas.DocumentEvent;
import org.starflink.schemas.FinishReason;
import org.starflink.schemas.Question;
import org.starflink.schemas.RejectedRecord;

/**
 * Garbage in, one running job: every kind of bad input is rejected with a reason or answered with an error
 * (as documented), and the good question asked after all of it is answered exactly as if nothing had happened.
 */
class BadInputITCase {
    static final int BLOCK = 64;
    static final int ANCHOR = 32;

    @RegisterExtension
    static final MiniClusterExtension MINI_CLUSTER = new MiniClusterExtension(
            new MiniClusterResourceConfiguration.Builder().setConfiguration(LoopbackCluster.apply(new Configuration()))
                    .setNumberTaskManagers(1).setNumberSlotsPerTaskManager(2)
                    .build());

    static EmbeddedKafka kafka;
    static JobHarness job;
    static JobClient client;
    static String goodDoc;
    static String goodText;
    static List<AnswerToken> answers;
    static List<RejectedRecord> rejected;
    static final List<String> questionIds = new ArrayList<>();
    /** Each record that must be rejected: where it was sent, its bytes, and the exact reason the job must give. */
    record BadRecord(RecordMetadata origin, byte[] value, String reason) {
    }

    static final List<BadRecord> badRecords = new ArrayList<>();

    @BeforeAll
    static void feedGarbageThenAGoodQuestion() throws Exception {
        kafka = EmbeddedKafka.builder().start();
        job = new JobHarness(kafka);
        Path checkpoints = Path.of("target", "checkpoints", "bad-input-" + java.util.UUID.randomUUID());
        client = job.start(2, checkpoints, JobHarness.options(
                SharedModels.stories260KDir().resolve("stories260K.bin"), BLOCK, ANCHOR),
                UnaryOperator.identity(), UnaryOperator.identity());
        goodDoc = "good-" + job.suffix;
        goodText = Corpus.document(5, 12);
        try (KafkaClient kafkaClient = new KafkaClient(kafka.bootstrapServers())) {
            // Undecodable records on both input topics.
            sendBad(kafkaClient, job.documents, "x", "this is not avro".getBytes(),
                    "cannot decode DocumentEvent: ");
            sendBad(kafkaClient, job.questions, "y", new byte[] {(byte) 0xff, 0x01, 0x02},
                    "cannot decode Question: ");
            // Records that decode but break the topics' contract (docs/schemas.md).
            String keyedWrong = "keyed-wrong-" + job.suffix;
            sendBad(kafkaClient, job.questions, "not-its-id", StarflinkClient.encode(Corpus.question(keyedWrong,
                    "nobody", "Who?", 8)), "invalid Question: Kafka key 'not-its-id' differs from question_id '" + keyedWrong
                    + "': records are keyed by their question_id");
            sendBad(kafkaClient, job.questions, "", StarflinkClient.encode(Corpus.question("", "nobody", "Who?", 8)),
                    "invalid Question: empty question_id (document nobody)");
            DocumentEvent negative = Corpus.chunks("negative-" + job.suffix, 1, "text", 10).get(0);
            ((org.starflink.schemas.DocumentChunk) negative.getBody()).setSeq(-1);
            sendBad(kafkaClient, job.documents, negative.getDocId(), StarflinkClient.encode(negative),
                    "invalid DocumentEvent: chunk seq must be >= 0, got -1 (document " + negative.getDocId() + ")");
            // An empty document (one blank chunk, marked last).
            for (DocumentEvent e : Corpus.chunks("empty-" + job.suffix, 1, " ", 10)) {
                kafkaClient.send(job.documents, e.getDocId(), e);
            }
            // The good document with every chunk sent twice, in shuffled order.
            List<DocumentEvent> chunks = new ArrayList<>(Corpus.chunks(goodDoc, 1, goodText, 23));
            chunks.addAll(new ArrayList<>(chunks));
            Collections.shuffle(chunks, new Random(9));
            for (DocumentEvent chunk : chunks) {
                kafkaClient.send(job.documents, goodDoc, chunk);
            }
            awaitBlocks(goodDoc, goodText); // a question sees the blocks that exist when it arrives
            // ... and the catalog: once a checkpoint covers every document record, the empty document is known.
            awaitCommittedToEnd(kafkaClient, job.documents);
            ask(kafkaClient, "unknown", "nobody-" + job.suffix, "Who?", 8);
            ask(kafkaClient, "empty-doc", "empty-" + job.suffix, "Who?", 8);
            ask(kafkaClient, "empty-question", goodDoc, "", 8);
            ask(kafkaClient, "too-long", goodDoc, "Lily and Tom played ball. ".repeat(80), 8);
            ask(kafkaClient, "zero-tokens", goodDoc, "Lily said", 0);
            ask(kafkaClient, "absurd-tokens", goodDoc, "Lily said", Integer.MAX_VALUE);
            ask(kafkaClient, "good", goodDoc, "Lily said", 12);

            answers = kafkaClient.readUntil(job.answers, AnswerToken.class, BadInputITCase::allFinal,
                    Duration.ofMinutes(2));
            // Once a checkpoint covers every input record, the (at-least-once) rejected sink has flushed what they
            // made: the topic then holds all the rejections there will be, so its count is exact.
            awaitCommittedToEnd(kafkaClient, job.questions);
            awaitCommittedToEnd(kafkaClient, job.documents);
            rejected = kafkaClient.readUntil(job.rejected, RejectedRecord.class, r -> false, Duration.ofSeconds(3));
        }
    }

    @AfterAll
    static void stop() throws Exception {
        if (client != null) {
            client.cancel().get();
        }
        if (kafka != null) {
            kafka.close();
        }
    }

    private static void sendBad(KafkaClient kafkaClient, String topic, String key, byte[] value, String reason) {
        badRecords.add(new BadRecord(kafkaClient.sendRaw(topic, key, value), value, reason));
    }

    private static void awaitCommittedToEnd(KafkaClient kafkaClient, String topic) throws Exception {
        long deadline = System.nanoTime() + Duration.ofMinutes(1).toNanos();
        while (!kafkaClient.committedToEnd("it-" + job.suffix, topic)) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("the job never caught up with " + topic);
            }
            Thread.sleep(100);
        }
    }

    /** Until every block of the document is encoded, as the job's block-events topic says. */
    private static void awaitBlocks(String docId, String text) throws Exception {
        Model model = SharedModels.stories260K();
        int tokens = new LongContextGenerator(model, new Transformer(ModelRegistry.backend(model, BackendKind.DJL)))
                .contextTokens(text).length;
        List<String> keys = new ArrayList<>();
        for (int block = 0; block < (tokens + BLOCK - 1) / BLOCK; block++) {
            keys.add(BlockKeys.of(docId, 1, block, JobHarness.MAX_PARALLELISM));
        }
        try (BlockEventLog events = new BlockEventLog(kafka.bootstrapServers(), job.blockEvents)) {
            events.awaitEncoded(keys, Duration.ofMinutes(1), () -> { });
        }
    }

    private static void ask(KafkaClient kafkaClient, String name, String docId, String text, int maxNewTokens) {
        String id = name + "-" + job.suffix;
        questionIds.add(id);
        kafkaClient.send(job.questions, id, Corpus.question(id, docId, text, maxNewTokens));
    }

    private static boolean allFinal(List<AnswerToken> received) {
        return received.stream().filter(AnswerToken::getFinal$).map(AnswerToken::getQuestionId).distinct().count()
                == questionIds.size();
    }

    private static AnswerToken finalAnswer(String name) {
        String id = name + "-" + job.suffix;
        return answers.stream().filter(a -> a.getQuestionId().equals(id) && a.getFinal$()).findFirst()
                .orElseThrow(() -> new AssertionError("no final answer for " + id));
    }

    /** The question got exactly one answer record: a final error with exactly this reason. */
    private static void assertError(String name, String reason) {
        String id = name + "-" + job.suffix;
        List<AnswerToken> records = answers.stream().filter(a -> a.getQuestionId().equals(id)).toList();
        assertEquals(1, records.size(), id + " should get one error record: " + records);
        AnswerToken answer = records.get(0);
        assertTrue(answer.getFinal$(), id);
        assertEquals(FinishReason.ERROR, answer.getFinishReason(), id);
        assertEquals(reason, answer.getError(), id);
    }

    @Test
    void undecodableBytesAndBrokenContractsGoToTheRejectedTopicWithTheirOriginAndReason() {
        assertEquals(badRecords.size(), rejected.size(), "one rejected record per bad input: " + rejected);
        for (BadRecord bad : badRecords) {
            List<RejectedRecord> matches = rejected.stream()
                    .filter(r -> r.getSourceTopic().equals(bad.origin().topic())
                            && r.getSourcePartition() == bad.origin().partition()
                            && r.getSourceOffset() == bad.origin().offset())
                    .toList();
            assertEquals(1, matches.size(), "rejections of " + bad.origin() + ": " + matches);
            RejectedRecord record = matches.get(0);
            byte[] raw = new byte[record.getRawValue().remaining()];
            record.getRawValue().duplicate().get(raw);
            assertArrayEquals(bad.value(), raw, "raw value of " + bad.origin());
            if (bad.reason().endsWith(": ")) { // the decoder's own message follows
                assertTrue(record.getReason().startsWith(bad.reason()), record.getReason());
            } else {
                assertEquals(bad.reason(), record.getReason(), "reason for " + bad.origin());
            }
        }
    }

    @Test
    void aQuestionAboutAnUnknownDocumentGetsAnError() {
        assertError("unknown", "unknown document nobody-" + job.suffix);
    }

    @Test
    void aQuestionAboutAnEmptyDocumentGetsAnError() {
        assertError("empty-doc", "document empty-" + job.suffix + " is empty");
    }

    @Test
    void anEmptyQuestionGetsAnError() {
        assertError("empty-question", "the question text is empty");
    }

    @Test
    void aQuestionLongerThanTheModelAllowsGetsAnError() {
        AnswerToken answer = finalAnswer("too-long");
        assertEquals(FinishReason.ERROR, answer.getFinishReason());
        assertTrue(answer.getError().matches("question of \\d+ tokens \\+ context of \\d+ tokens \\+ 8 new tokens = "
                + "\\d+ exceeds the model's context window of 512"), answer.getError());
        assertError("too-long", answer.getError()); // and only that one record
    }

    @Test
    void maxNewTokensOfZeroOrAbsurdlyLargeGetsAnError() {
        assertError("zero-tokens", "max_new_tokens must be in 1..1048576, got 0");
        assertError("absurd-tokens", "max_new_tokens must be in 1..1048576, got " + Integer.MAX_VALUE);
    }

    @Test
    void duplicateAndOutOfOrderChunksStillMakeTheRightDocumentAndOtherAnswersAreUnaffected() {
        Model model = SharedModels.stories260K();
        LongContextGenerator engine = new LongContextGenerator(model,
                new Transformer(ModelRegistry.backend(model, BackendKind.DJL)));
        int[] expected = engine.generate(engine.contextTokens(goodText), engine.questionTokens("Lily said"),
                new BlockLayout(BLOCK, ANCHOR), SamplingParams.greedy(12), false, t -> { }).tokens();
        List<Integer> actual = StarflinkJobITCase.tokensByIndex("good-" + job.suffix,
                answers.stream().filter(a -> a.getQuestionId().equals("good-" + job.suffix)).toList(), false);
        assertEquals(StarflinkJobITCase.toList(expected), actual);
    }
}
