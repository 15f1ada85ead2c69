package org.starflink.operators.kafka;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.util.Arrays;
import java.util.List;
import org.apache.flink.formats.avro.AvroSerializationSchema;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.starflink.schemas.Question;

class StrictAvroDecoderTest {

    final StrictAvroDecoder<Question> decoder = new StrictAvroDecoder<>(Question.class);
    Question question;
    byte[] bytes;

    @BeforeEach
    void encode() throws Exception {
        question = Question.newBuilder().setQuestionId("q").setDocId("d").setText("why?").setStop(List.of("."))
                .build();
        AvroSerializationSchema<Question> ser = AvroSerializationSchema.forSpecific(Question.class);
        ser.open(null);
        bytes = ser.serialize(question);
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
        assertThrows(IOException.class, () -> decoder.decode(Arrays.copyOf(bytes, bytes.length - 1)));
        assertThrows(IOException.class, () -> decoder.decode(null));
        assertThrows(IOException.class, () -> decoder.decode(new byte[] {(byte) 0x81, (byte) 0x80, 0x7f}));
        // still usable after failures
        assertThrows(IOException.class, () -> decoder.decode(new byte[0]));
    }

    @Test
    void stillDecodesAfterAFailure() throws IOException {
        assertThrows(IOException.class, () -> decoder.decode(new byte[] {1, 2, 3}));
        assertEquals(question, decoder.decode(bytes));
    }
}
