package org.starflink.it;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.function.Consumer;
import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.EncoderFactory;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.starflink.it.StarflinkClusterIT.Run;
import org.starflink.it.cluster.ClusterProcesses;
import org.starflink.pipeline.client.StarflinkClient;
import org.starflink.schemas.AnswerToken;
import org.starflink.schemas.DocumentEvent;
import org.starflink.schemas.FinishReason;
import org.starflink.schemas.Question;
import org.starflink.schemas.RejectedRecord;

/**
 * Issue 12, scenario 4: garbage at volume on the multi-process cluster ({@link StarflinkClusterIT}'s fixture, a
 * cluster of its own). Malformed records of every kind are mixed into both input topics while the three documents
 * stream in (one after every 14 good chunks) and between the good questions: each bad record lands in the rejected
 * topic at its topic, partition and offset with its exact reason, or is answered with one record, finish_reason =
 * error and its exact reason; every good question is answered equal to the engine's; no TaskManager dies and the
 * job never restarts (REST: TaskManagers registered, numRestarts, exception history).
 */
class GarbageAtVolumeIT {
    static final Path DIR = StarflinkClusterIT.DIR.resolveSibling(StarflinkClusterIT.DIR.getFileName() + "-garbage");

    @RegisterExtension
    static final ClusterProcesses PROCESSES = new ClusterProcesses(DIR);

    @BeforeAll
    static void startTheCluster() {
        StarflinkClusterIT.startTheCluster(PROCESSES);
    }

    /** A bad record: where it went, its bytes, and the reason the job must give (a prefix where it ends in ": "). */
    record Rejection(String kind, RecordMetadata origin, byte[] value, String reason) {
    }

    /** A bad question that must be answered with one error record. */
    record ErrorAnswer(String kind, String questionId, String reason) {
    }

    final List<Rejection> rejections = new ArrayList<>();
    final List<ErrorAnswer> errorAnswers = new ArrayList<>();
    final Random random = new Random(12);

    @Test
    void everyBadRecordIsRejectedOrAnsweredWithItsReasonAndEveryGoodQuestionIsAnswered() {
        Run run = new Run();
        try {
            long t0 = System.currentTimeMillis();
            run.submit(2, null);
            List<String> ids = run.docIds();
            // The three documents in chunks of 8 characters, interleaved, a bad record after every 14.
            List<DocumentEvent> good = new ArrayList<>();
            for (int d = 0; d < 3; d++) {
                good.addAll(Corpus.chunks(ids.get(d), 1, run.texts.get(ids.get(d)), 8));
            }
            good.sort((a, b) -> Integer.compare(seq(a), seq(b))); // round-robin over the documents, in order each
            List<Consumer<Run>> badDocuments = badDocuments(run);
            int badDocumentRecords = 0;
            for (int i = 0; i < good.size(); i++) {
                run.send(good.get(i));
                if (i % 14 == 13) {
                    badDocuments.get(badDocumentRecords++ % badDocuments.size()).accept(run);
                }
            }
            run.awaitDocumentsCheckpointed();

            // Nine good questions (sampled, as in the other cluster scenarios), a bad one after each, then the rest.
            String[] prompts = {"Lily said", "The ball was", "Once upon a time", "Lily was sad", "Her mom said"};
            List<Question> goodQuestions = new ArrayList<>();
            for (int n = 0; n < 9; n++) {
                Question question = Corpus.question("q" + n + "-" + run.suffix, ids.get(n % 3),
                        prompts[n % prompts.length], StarflinkClusterIT.MAX_NEW_TOKENS);
                question.setTemperature(0.8f);
                question.setTopP(0.9f);
                question.setSeed(1000 + n);
                run.reference(question); // computed before the job races the test for the CPU
                goodQuestions.add(question);
            }
            List<Consumer<Run>> badQuestions = badQuestions(run, ids.get(0));
            for (int n = 0; n < Math.max(goodQuestions.size(), badQuestions.size()); n++) {
                if (n < goodQuestions.size()) {
                    Question question = goodQuestions.get(n);
                    run.questions.put(question.getQuestionId(), question);
                    run.kafka.send(run.questionsTopic, question.getQuestionId(), question);
                }
                if (n < badQuestions.size()) {
                    badQuestions.get(n).accept(run);
                }
            }
            int goodRecords = good.size() + goodQuestions.size();
            int badRecords = rejections.size() + errorAnswers.size();

            StarflinkClusterIT.await("every answer, good and error, complete", Duration.ofMinutes(4),
                    () -> run.watcher.finals() == goodQuestions.size() + errorAnswers.size()
                            || !rest().jobState(run.jobId).equals("RUNNING"));
            assertEquals("RUNNING", rest().jobState(run.jobId), "the job\n" + rest().exceptions(run.jobId));
            // Once a checkpoint covers every input record the at-least-once rejected sink has flushed: the topic
            // holds every rejection there will be.
            StarflinkClusterIT.await("a checkpoint covering every question", Duration.ofMinutes(2),
                    () -> committedToEnd(run, run.questionsTopic) && committedToEnd(run, run.documents));
            List<RejectedRecord> rejected;
            try {
                rejected = run.kafka.readUntil("rejected-" + run.suffix, RejectedRecord.class, r -> false,
                        Duration.ofSeconds(3));
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            long doneMs = System.currentTimeMillis() - t0;

            Map<String, List<AnswerToken>> byQuestion = run.watcher.byQuestion();
            int compared = 0;
            for (Question question : goodQuestions) {
                List<Integer> actual = StarflinkJobITCase.tokensByIndex(question.getQuestionId(),
                        byQuestion.get(question.getQuestionId()), false);
                assertEquals(run.reference(question), actual, "answer to " + question.getQuestionId());
                compared += actual.size();
            }
            Map<String, Integer> byKind = new TreeMap<>();
            for (ErrorAnswer bad : errorAnswers) {
                List<AnswerToken> records = byQuestion.getOrDefault(bad.questionId(), List.of());
                assertEquals(1, records.size(), bad.kind() + ": one error record: " + records);
                AnswerToken answer = records.get(0);
                assertTrue(answer.getFinal$(), bad.kind());
                assertEquals(FinishReason.ERROR, answer.getFinishReason(), bad.kind());
                if (bad.reason().startsWith("^")) {
                    assertTrue(answer.getError().matches(bad.reason()), bad.kind() + ": " + answer.getError());
                } else {
                    assertEquals(bad.reason(), answer.getError(), bad.kind());
                }
                byKind.merge("answered: " + bad.kind(), 1, Integer::sum);
            }
            assertEquals(goodQuestions.size() + errorAnswers.size(), byQuestion.size(),
                    "questions answered: " + byQuestion.keySet());
            assertEquals(rejections.size(), rejected.size(), "one rejected record per bad input");
            for (Rejection bad : rejections) {
                List<RejectedRecord> matches = rejected.stream()
                        .filter(r -> r.getSourceTopic().equals(bad.origin().topic())
                                && r.getSourcePartition() == bad.origin().partition()
                                && r.getSourceOffset() == bad.origin().offset()).toList();
                assertEquals(1, matches.size(), bad.kind() + ": rejections of " + bad.origin() + ": " + matches);
                RejectedRecord record = matches.get(0);
                byte[] raw = new byte[record.getRawValue().remaining()];
                record.getRawValue().duplicate().get(raw);
                assertArrayEquals(bad.value(), raw, bad.kind() + ": raw value");
                if (bad.reason().endsWith(": ")) { // Avro's own message follows
                    assertTrue(record.getReason().startsWith(bad.reason()), bad.kind() + ": " + record.getReason());
                } else {
                    assertEquals(bad.reason(), record.getReason(), bad.kind());
                }
                byKind.merge("rejected: " + bad.kind(), 1, Integer::sum);
            }

            assertEquals(2, rest().taskManagerIds().size(), "TaskManagers registered");
            cluster().taskManagers().forEach(tm -> tm.assertAlive());
            assertEquals(0, rest().failureCount(run.jobId), "failures\n" + rest().exceptions(run.jobId));
            assertEquals(0, run.restarts(), "numRestarts");
            assertEquals(0, run.watcher.duplicates(), "duplicate answer records without a failure");
            StarflinkClusterIT.record("garbage at volume", String.format(
                    "good records=%d (%d chunks, %d questions), bad records=%d (%.1f%%: %d on documents, %d on "
                            + "questions), rejected=%d, error answers=%d, tokens compared=%d, TaskManagers=2, "
                            + "failures=0, numRestarts=0, submit to all checked=%d ms; by kind %s",
                    goodRecords, good.size(), goodQuestions.size(), badRecords,
                    100.0 * badRecords / (goodRecords + badRecords), badDocumentRecords,
                    badRecords - badDocumentRecords, rejected.size(), errorAnswers.size(), compared, doneMs,
                    byKind));
        } finally {
            run.cancel();
        }
    }

    private static int seq(DocumentEvent event) {
        return ((org.starflink.schemas.DocumentChunk) event.getBody()).getSeq();
    }

    private static org.starflink.it.cluster.FlinkRest rest() {
        return StarflinkClusterIT.rest;
    }

    private static org.starflink.it.cluster.FlinkSessionCluster cluster() {
        return StarflinkClusterIT.cluster;
    }

    private static boolean committedToEnd(Run run, String topic) {
        try {
            return run.kafka.committedToEnd(run.group, topic);
        } catch (Exception e) {
            return false;
        }
    }

    private void reject(Run run, String kind, String topic, String key, byte[] value, String reason) {
        rejections.add(new Rejection(kind, run.kafka.sendRaw(topic, key, value), value, reason));
    }

    /** The kinds of bad document records, each a sender; cycled through while the documents stream in. */
    private List<Consumer<Run>> badDocuments(Run run) {
        String topic = run.documents;
        String decode = "cannot decode DocumentEvent: ";
        return List.of(
                r -> {
                    byte[] bytes = new byte[1 + random.nextInt(64)];
                    random.nextBytes(bytes);
                    reject(r, "random bytes", topic, "garbage", bytes, decode);
                },
                r -> {
                    byte[] whole = StarflinkClient.encode(Corpus.chunks("cut-" + r.suffix, 1,
                            "a chunk whose text the record cuts off", 100).get(0));
                    reject(r, "truncated Avro", topic, "cut-" + r.suffix, Arrays.copyOf(whole, whole.length - 10),
                            decode + "input ends inside the record");
                },
                r -> reject(r, "wrong schema (a Question)", topic, "garbage",
                        StarflinkClient.encode(Corpus.question("q-as-document", "d", "What?", 8)), decode),
                r -> {
                    byte[] claim = oneGigabyteChunkClaim("claim-" + r.suffix);
                    reject(r, "1 GB chunk claim", topic, "claim-" + r.suffix, claim,
                            decode + "a string of 1073741824 bytes claimed in a record of " + claim.length + " bytes");
                },
                r -> {
                    DocumentEvent negative = Corpus.chunks("negative-" + r.suffix, 1, "text", 10).get(0);
                    ((org.starflink.schemas.DocumentChunk) negative.getBody()).setSeq(-1);
                    reject(r, "negative chunk seq", topic, negative.getDocId(), StarflinkClient.encode(negative),
                            "invalid DocumentEvent: chunk seq must be >= 0, got -1 (document " + negative.getDocId()
                                    + ")");
                },
                r -> {
                    DocumentEvent chunk = Corpus.chunks(r.docIds().get(0), 1, "not its key", 20).get(0);
                    reject(r, "key not its doc_id", topic, "elsewhere", StarflinkClient.encode(chunk),
                            "invalid DocumentEvent: Kafka key 'elsewhere' differs from doc_id '" + chunk.getDocId()
                                    + "': records are keyed by their doc_id");
                });
    }

    /** The kinds of bad questions, each a sender: rejected, or answered with an error. */
    private List<Consumer<Run>> badQuestions(Run run, String goodDoc) {
        String topic = run.questionsTopic;
        String decode = "cannot decode Question: ";
        List<Consumer<Run>> kinds = new ArrayList<>();
        kinds.add(r -> {
            byte[] bytes = new byte[1 + random.nextInt(64)];
            random.nextBytes(bytes);
            reject(r, "random bytes", topic, "garbage", bytes, decode);
        });
        kinds.add(r -> {
            byte[] whole = StarflinkClient.encode(Corpus.question("cut-" + r.suffix, goodDoc,
                    "a question whose text the record cuts off", 8));
            // the text ends 12 bytes before the record's end (max_new_tokens, temperature, top_p, seed, stop, wait_complete_ms)
            reject(r, "truncated Avro", topic, "cut-" + r.suffix, Arrays.copyOf(whole, whole.length - 30),
                    decode + "input ends inside the record");
        });
        kinds.add(r -> reject(r, "wrong schema (a DocumentEvent)", topic, "garbage",
                StarflinkClient.encode(Corpus.chunks("d", 1, "a chunk", 10).get(0)), decode));
        kinds.add(r -> {
            String id = "keyed-wrong-" + r.suffix;
            reject(r, "key not its question_id", topic, "not-its-id", StarflinkClient.encode(Corpus.question(id,
                    goodDoc, "Who?", 8)), "invalid Question: Kafka key 'not-its-id' differs from question_id '"
                    + id + "': records are keyed by their question_id");
        });
        kinds.add(r -> reject(r, "empty question_id", topic, "", StarflinkClient.encode(Corpus.question("",
                goodDoc, "Who?", 8)), "invalid Question: empty question_id (document " + goodDoc + ")"));
        kinds.add(r -> {
            byte[] claim = stopListClaim("stops-" + r.suffix, goodDoc);
            reject(r, "10^9 stop strings claimed", topic, "stops-" + r.suffix, claim,
                    decode + "an array block of 1000000000 items claimed in a record of " + claim.length + " bytes");
        });
        kinds.add(r -> ask(r, "unknown document", q -> q.setDocId("nobody-" + r.suffix),
                "unknown document nobody-" + r.suffix));
        kinds.add(r -> ask(r, "empty question", q -> q.setText(""), "the question text is empty"));
        kinds.add(r -> ask(r, "question longer than the window", q -> q.setText("Lily and Tom played ball. "
                .repeat(80)), "^question of \\d+ tokens \\+ context of \\d+ tokens \\+ 8 new tokens = \\d+ exceeds "
                + "the model's context window of 512$"));
        kinds.add(r -> ask(r, "max_new_tokens 10^9", q -> q.setMaxNewTokens(1_000_000_000),
                "max_new_tokens must be in 1..1048576, got 1000000000"));
        kinds.add(r -> ask(r, "max_new_tokens 0", q -> q.setMaxNewTokens(0),
                "max_new_tokens must be in 1..1048576, got 0"));
        kinds.add(r -> ask(r, "negative temperature", q -> q.setTemperature(-1f),
                "temperature must be a finite number >= 0, got -1.0"));
        kinds.add(r -> ask(r, "NaN temperature", q -> q.setTemperature(Float.NaN),
                "temperature must be a finite number >= 0, got NaN"));
        kinds.add(r -> ask(r, "top_p 0", q -> q.setTopP(0f), "top_p must be in (0, 1], got 0.0"));
        kinds.add(r -> ask(r, "top_p 1.5", q -> q.setTopP(1.5f), "top_p must be in (0, 1], got 1.5"));
        kinds.add(r -> ask(r, "empty stop string", q -> q.setStop(List.of("")), "stop strings must not be empty"));
        return kinds;
    }

    /** A well-formed question about {@code goodDoc} made bad by {@code spoil}; its answer must be that error. */
    private void ask(Run run, String kind, Consumer<Question> spoil, String reason) {
        String id = "bad" + errorAnswers.size() + "-" + run.suffix;
        Question question = Corpus.question(id, run.docIds().get(0), "Lily said", 8);
        spoil.accept(question);
        run.kafka.send(run.questionsTopic, id, question);
        errorAnswers.add(new ErrorAnswer(kind, id, reason));
    }

    /** A DocumentEvent whose chunk text claims 1 GB, followed by three bytes. */
    static byte[] oneGigabyteChunkClaim(String docId) {
        return avro(encoder -> {
            encoder.writeString(docId);
            encoder.writeLong(1); // version
            encoder.writeIndex(0); // body: DocumentChunk
            encoder.writeInt(0); // seq
            encoder.writeLong(1L << 30); // text: 1 GB claimed
            encoder.writeFixed(new byte[] {'a', 'b', 'c'});
        });
    }

    /** A Question whose stop list claims 10^9 strings, of which one follows. */
    static byte[] stopListClaim(String questionId, String docId) {
        return avro(encoder -> {
            encoder.writeString(questionId);
            encoder.writeString(docId);
            encoder.writeString("Lily said");
            encoder.writeInt(8); // max_new_tokens
            encoder.writeFloat(0); // temperature
            encoder.writeFloat(1); // top_p
            encoder.writeLong(0); // seed
            encoder.writeArrayStart();
            encoder.setItemCount(1_000_000_000L);
            encoder.startItem();
            encoder.writeString(".");
        });
    }

    interface Writes {
        void to(BinaryEncoder encoder) throws IOException;
    }

    private static byte[] avro(Writes writes) {
        try {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            BinaryEncoder encoder = EncoderFactory.get().binaryEncoder(out, null);
            writes.to(encoder);
            encoder.flush();
            return out.toByteArray();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
