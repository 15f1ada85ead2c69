package org.starflink.operators.kafka;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.util.List;
import org.apache.flink.streaming.api.operators.ProcessOperator;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.streaming.util.OneInputStreamOperatorTestHarness;
import org.junit.jupiter.api.Test;
import org.starflink.schemas.DocumentChunk;
import org.starflink.schemas.DocumentDelete;
import org.starflink.schemas.DocumentEvent;
import org.starflink.schemas.Question;
import org.starflink.schemas.RejectedRecord;

/** Records that decode but break their topic's contract go to the rejected side output with the reason. */
class WireContractTest {

    @Test
    void documentsAreKeyedByDocIdAndChunkSeqsAreNotNegative() throws Exception {
        List<RejectedRecord> rejected = new java.util.ArrayList<>();
        List<DocumentEvent> passed = run(DocumentEvent.class, rejected,
                raw("d1", chunk("d1", 0)), raw("other", chunk("d1", 1)), raw(null, chunk("d1", 2)),
                raw("d1", chunk("d1", -1)), raw("", chunk("", 0)), raw("d2", delete("d2")));
        assertEquals(List.of(chunk("d1", 0), delete("d2")), passed);
        assertEquals(4, rejected.size());
        assertReason(rejected.get(0), "Kafka key 'other' differs from doc_id 'd1'");
        assertReason(rejected.get(1), "Kafka key null differs from doc_id 'd1'");
        assertReason(rejected.get(2), "chunk seq must be >= 0, got -1");
        assertReason(rejected.get(3), "empty doc_id");
        assertEquals(3L, rejected.get(2).getSourceOffset(), "the origin of the record is kept");
    }

    @Test
    void questionsAreKeyedByQuestionIdWhichIsNotEmpty() throws Exception {
        List<RejectedRecord> rejected = new java.util.ArrayList<>();
        List<Question> passed = run(Question.class, rejected, raw("q1", question("q1", "d")),
                raw("d", question("q2", "d")), raw("", question("", "d")));
        assertEquals(List.of(question("q1", "d")), passed);
        assertReason(rejected.get(0), "invalid Question: Kafka key 'd' differs from question_id 'q2'");
        assertReason(rejected.get(1), "invalid Question: empty question_id (document d)");
        assertEquals(2, rejected.size());
    }

    private static void assertReason(RejectedRecord record, String fragment) {
        assertTrue(record.getReason().contains(fragment), record.getReason() + " lacks " + fragment);
    }

    private static <T extends org.apache.avro.specific.SpecificRecord> List<T> run(Class<T> type,
            List<RejectedRecord> rejected, KafkaRawRecord... records) throws Exception {
        try (var harness = new OneInputStreamOperatorTestHarness<>(new ProcessOperator<>(new DecodeOrReject<>(type)))) {
            harness.open();
            for (KafkaRawRecord record : records) {
                harness.processElement(record, 0);
            }
            var side = harness.getSideOutput(DecodeOrReject.REJECTED);
            if (side != null) {
                side.stream().map(StreamRecord::getValue).forEach(rejected::add);
            }
            return harness.extractOutputValues();
        }
    }

    private long offset;

    private KafkaRawRecord raw(String key, org.apache.avro.specific.SpecificRecord value) throws Exception {
        return new KafkaRawRecord("topic", 0, offset++, 0L, key == null ? null : key.getBytes(StandardCharsets.UTF_8),
                encode(value));
    }

    @SuppressWarnings({"unchecked", "rawtypes"})
    private static byte[] encode(org.apache.avro.specific.SpecificRecord value) throws Exception {
        var schema = org.apache.flink.formats.avro.AvroSerializationSchema.forSpecific((Class) value.getClass());
        schema.open(null);
        return schema.serialize(value);
    }

    private static DocumentEvent chunk(String docId, int seq) {
        return DocumentEvent.newBuilder().setDocId(docId).setVersion(1)
                .setBody(DocumentChunk.newBuilder().setSeq(seq).setText("t").setLast(false).build()).build();
    }

    private static DocumentEvent delete(String docId) {
        return DocumentEvent.newBuilder().setDocId(docId).setVersion(1).setBody(DocumentDelete.newBuilder().build())
                .build();
    }

    private static Question question(String id, String docId) {
        return Question.newBuilder().setQuestionId(id).setDocId(docId).setText("why?").build();
    }
}
