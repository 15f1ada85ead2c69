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

    /**
     * A length prefix that claims more than the record holds is refused before Avro allocates it. Without the
     * bound the 1 GB claim allocates 1 GB (Avro sizes the string first, then finds the input short).
     */
    @Test
    void refusesALengthLargerThanTheRecordBeforeAllocatingIt() throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        BinaryEncoder encoder = EncoderFactory.get().binaryEncoder(out, null);
        encoder.writeString("doc"); // DocumentEvent.doc_id
        encoder.writeLong(1); // version
        encoder.writeIndex(0); // body: DocumentChunk
        encoder.writeInt(0); // seq
        encoder.writeLong(1L << 30); // text: a 1 GB claim ...
        encoder.writeFixed(new byte[] {'a', 'b', 'c'}); // ... of which 3 bytes follow
        encoder.flush();
        byte[] claim = out.toByteArray();
        StrictAvroDecoder<org.starflink.schemas.DocumentEvent> documents =
                new StrictAvroDecoder<>(org.starflink.schemas.DocumentEvent.class);
        AvroSerializationSchema<org.starflink.schemas.DocumentEvent> ser =
                AvroSerializationSchema.forSpecific(org.starflink.schemas.DocumentEvent.class);
        ser.open(null);
        documents.decode(ser.serialize(org.starflink.schemas.DocumentEvent.newBuilder().setDocId("d").setVersion(1)
                .setBody(org.starflink.schemas.DocumentChunk.newBuilder().setSeq(0).setText("t").setLast(true)
                        .build()).build())); // the readers are made: what follows allocates only the decoding

        com.sun.management.ThreadMXBean threads =
                (com.sun.management.ThreadMXBean) java.lang.management.ManagementFactory.getThreadMXBean();
        long before = threads.getCurrentThreadAllocatedBytes();
        IOException refused = assertThrows(IOException.class, () -> documents.decode(claim));
        long allocated = threads.getCurrentThreadAllocatedBytes() - before;
        assertEquals("a string of 1073741824 bytes claimed in a record of " + claim.length + " bytes",
                refused.getMessage());
        assertTrue(allocated < 16 << 20, "decoding the claim allocated " + allocated + " bytes");

        // the same for the stop list's item count: 10^9 strings claimed in a few bytes
        out.reset();
        encoder.writeString("q");
        encoder.writeString("d");
        encoder.writeString("why?");
        encoder.writeInt(8);
        encoder.writeFloat(0);
        encoder.writeFloat(1);
        encoder.writeLong(0);
        encoder.writeArrayStart();
        encoder.setItemCount(1_000_000_000L);
        encoder.startItem();
        encoder.writeString(".");
        encoder.flush();
        byte[] items = out.toByteArray();
        IOException tooMany = assertThrows(IOException.class, () -> decoder.decode(items));
        assertEquals("an array block of 1000000000 items claimed in a record of " + items.length + " bytes",
                tooMany.getMessage());
        assertEquals(question, decoder.decode(bytes), "still usable");
    }
}
