package org.starflink.operators.kafka;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.util.Arrays;
import java.util.List;
import org.apache.avro.Schema;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericDatumWriter;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.EncoderFactory;
import org.apache.flink.formats.avro.AvroSerializationSchema;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.starflink.schemas.Question;
import org.starflink.schemas.WireSchemas;

class StrictAvroDecoderTest {

    final StrictAvroDecoder<Question> decoder = new StrictAvroDecoder<>(Question.class);
    Question question;
    byte[] bytes;

    @BeforeEach
    void encode() throws Exception {
        question = Question.newBuilder().setQuestionId("q").setDocId("d").setText("why?").setStop(List.of("."))
                .build();
        bytes = serialize(question);
    }

    static byte[] serialize(Question question) throws Exception {
        AvroSerializationSchema<Question> ser = AvroSerializationSchema.forSpecific(Question.class);
        ser.open(null);
        return ser.serialize(question);
    }

    @Test
    void decodesWhatAvroSerializationSchemaWrites() throws IOException {
        assertEquals(question, decoder.decode(bytes));
        assertEquals(question, decoder.decode(bytes), "decoder reuse");
    }

    @Test
    void rejectsTrailingBytesTruncationNullAndGarbage() {
        IOException trailing = assertThrows(IOException.class, () -> decoder.decode(Arrays.copyOf(bytes, bytes.length + 1)));
        assertTrue(trailing.getMessage().contains("trailing bytes"), trailing.getMessage());
        // cut inside the stop list (cutting off exactly the newest field would leave a valid v1 record, below)
        assertThrows(IOException.class, () -> decoder.decode(Arrays.copyOf(bytes, bytes.length - 2)));
        assertThrows(IOException.class, () -> decoder.decode(null));
        assertThrows(IOException.class, () -> decoder.decode(new byte[] {(byte) 0x81, (byte) 0x80, 0x7f}));
        // still usable after failures
        assertThrows(IOException.class, () -> decoder.decode(new byte[0]));
    }

    /** A record written by a v1 producer (no wait_complete_ms) decodes, the new field at its default. */
    @Test
    void decodesWhatAnOlderProducerWrote() throws Exception {
        Schema v1 = WireSchemas.load("v1", "Question");
        GenericRecord old = new GenericData.Record(v1);
        old.put("question_id", "q-old");
        old.put("doc_id", "d");
        old.put("text", "why?");
        old.put("max_new_tokens", 9);
        old.put("temperature", 0f);
        old.put("top_p", 1f);
        old.put("seed", 3L);
        old.put("stop", List.of());
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        BinaryEncoder encoder = EncoderFactory.get().binaryEncoder(out, null);
        new GenericDatumWriter<GenericRecord>(v1).write(old, encoder);
        encoder.flush();

        Question decoded = decoder.decode(out.toByteArray());
        assertEquals("q-old", decoded.getQuestionId());
        assertEquals(9, decoded.getMaxNewTokens());
        assertEquals(0L, decoded.getWaitCompleteMs());
        // and a current record still decodes as the current schema, with its new field
        question.setWaitCompleteMs(5000L);
        assertEquals(5000L, decoder.decode(serialize(question)).getWaitCompleteMs());
    }

    @Test
    void stillDecodesAfterAFailure() throws IOException {
        assertThrows(IOException.class, () -> decoder.decode(new byte[] {1, 2, 3}));
        assertEquals(question, decoder.decode(bytes));
    }
}
