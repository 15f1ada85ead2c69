package org.starflink.schemas;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.util.List;
import java.util.stream.Stream;
import org.apache.avro.Schema;
import org.apache.avro.SchemaCompatibility;
import org.apache.avro.SchemaCompatibility.SchemaCompatibilityType;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericDatumReader;
import org.apache.avro.generic.GenericDatumWriter;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.DecoderFactory;
import org.apache.avro.io.EncoderFactory;
import org.apache.avro.specific.SpecificDatumReader;
import org.apache.avro.specific.SpecificDatumWriter;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The current schemas must stay compatible in both directions with every released version
 * ({@code src/main/resources/schemas/<version>}, listed in {@link WireSchemas#VERSIONS}): a new job reads what an
 * old producer wrote (backward) and an old consumer reads what the new job writes (forward).
 */
class SchemaCompatibilityTest {

    static final List<String> PREVIOUS_VERSIONS = WireSchemas.VERSIONS;

    /** Every wire type's current schema. */
    static final List<Schema> CURRENT = List.of(DocumentEvent.getClassSchema(), Question.getClassSchema(),
            AnswerToken.getClassSchema(), RejectedRecord.getClassSchema(), BlockEvent.getClassSchema());

    /** Each current schema against each released version that has the type (BlockEvent exists from v3 on). */
    static Stream<Object[]> currentAgainstPrevious() {
        return PREVIOUS_VERSIONS.stream().flatMap(v -> CURRENT.stream()
                .filter(s -> WireSchemas.find(v, s.getName()).isPresent())
                .map(s -> new Object[] {v + "/" + s.getName(), s, load(v, s.getName())}));
    }

    /** A type, once released, stays in every later version: a reader finds the writer schemas it needs. */
    @Test
    void aReleasedTypeIsInEveryLaterVersion() {
        for (Schema current : CURRENT) {
            boolean released = false;
            for (String version : PREVIOUS_VERSIONS) {
                boolean present = WireSchemas.find(version, current.getName()).isPresent();
                assertTrue(present || !released, current.getName() + " is missing from " + version);
                released |= present;
            }
            assertTrue(released, current.getName() + " was never released");
        }
        assertEquals(List.of("v1", "v2"), PREVIOUS_VERSIONS.stream()
                .filter(v -> WireSchemas.find(v, "BlockEvent").isEmpty()).toList());
    }

    static Schema load(String version, String name) {
        return WireSchemas.load(version, name);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("currentAgainstPrevious")
    void currentReadsPreviousAndPreviousReadsCurrent(String label, Schema current, Schema previous) {
        assertCompatible(current, previous, "current reader, " + label + " writer");
        assertCompatible(previous, current, label + " reader, current writer");
    }

    /** Beyond the schema check: bytes written with v1 decode into the generated classes, and back. */
    @Test
    void v1BytesDecodeIntoCurrentClassesAndBack() throws IOException {
        Schema v1 = load("v1", "Question");
        GenericRecord old = new GenericData.Record(v1);
        old.put("question_id", "q-1");
        old.put("doc_id", "d-1");
        old.put("text", "what?");
        old.put("max_new_tokens", 7);
        old.put("temperature", 0.5f);
        old.put("top_p", 0.9f);
        old.put("seed", 42L);
        old.put("stop", List.of("\n\n"));
        byte[] bytes = write(new GenericDatumWriter<>(v1), old);

        Question q = new SpecificDatumReader<Question>(v1, Question.getClassSchema())
                .read(null, DecoderFactory.get().binaryDecoder(bytes, null));
        assertEquals("q-1", q.getQuestionId());
        assertEquals(7, q.getMaxNewTokens());
        assertEquals(List.of("\n\n"), q.getStop());

        byte[] again = write(new SpecificDatumWriter<>(Question.class), q);
        GenericRecord back = new GenericDatumReader<GenericRecord>(Question.getClassSchema(), v1)
                .read(null, DecoderFactory.get().binaryDecoder(again, null));
        assertEquals(42L, back.get("seed"));
    }

    /** The newest released version is what the generated classes are: a change to the .avsc files must ship as a new version. */
    @Test
    void theNewestReleasedVersionIsTheCurrentSchema() {
        String newest = PREVIOUS_VERSIONS.get(PREVIOUS_VERSIONS.size() - 1);
        for (Schema current : CURRENT) {
            Schema released = load(newest, current.getName());
            assertTrue(WireSchemas.sameLayout(current, released), current.getName() + " differs from " + newest
                    + ": copy src/main/avro to schemas/<next version> and add it to WireSchemas.VERSIONS");
            for (Schema.Field field : current.getFields()) {
                assertEquals(field.defaultVal(), released.getField(field.name()).defaultVal(), field.name());
            }
        }
    }

    /** Older writers of a type, newest first, without the current schema itself. */
    @Test
    void olderWritersListOnlyTheSchemasThatDiffer() {
        assertEquals(List.of(load("v1", "Question")), WireSchemas.olderWriters(Question.getClassSchema()));
        assertEquals(List.of(), WireSchemas.olderWriters(RejectedRecord.getClassSchema()));
        assertEquals(List.of(), WireSchemas.olderWriters(BlockEvent.getClassSchema())); // new in v3: none older
    }

    /** Negative control: the check above does catch a change that breaks old data (a new field without default). */
    @Test
    void checkerRejectsANewFieldWithoutDefault() {
        Schema v1 = load("v1", "Question");
        Schema broken = new Schema.Parser().parse(v1.toString().replace(
                "\"fields\":[", "\"fields\":[{\"name\":\"tenant\",\"type\":\"string\"},"));
        assertEquals(SchemaCompatibilityType.INCOMPATIBLE,
                SchemaCompatibility.checkReaderWriterCompatibility(broken, v1).getType());
    }

    static void assertCompatible(Schema reader, Schema writer, String what) {
        SchemaCompatibility.SchemaPairCompatibility result =
                SchemaCompatibility.checkReaderWriterCompatibility(reader, writer);
        assertEquals(SchemaCompatibilityType.COMPATIBLE, result.getType(), what + ": " + result.getDescription());
    }

    static <T> byte[] write(org.apache.avro.io.DatumWriter<T> writer, T value) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        BinaryEncoder enc = EncoderFactory.get().binaryEncoder(out, null);
        writer.write(value, enc);
        enc.flush();
        return out.toByteArray();
    }

}
