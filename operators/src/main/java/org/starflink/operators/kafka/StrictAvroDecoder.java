package org.starflink.operators.kafka;

import java.io.IOException;
import java.io.Serializable;
import org.apache.avro.io.BinaryDecoder;
import org.apache.avro.io.DecoderFactory;
import org.apache.avro.specific.SpecificDatumReader;
import org.apache.avro.specific.SpecificRecord;

/**
 * Decodes plain Avro binary (what {@code AvroSerializationSchema.forSpecific} writes: no header, no schema id)
 * into a generated class, and refuses anything that is not exactly one record.
 *
 * <p>Avro binary has no framing, so random bytes often "decode" into something; this decoder additionally rejects
 * input with bytes left over after the record, and turns the runtime exceptions Avro throws on malformed input
 * (bad union index, negative length, ...) into {@link IOException}s. The writer schema is assumed to be the
 * reader's (no registry here); compatible evolution needs the writer schema and is future work (docs/loop.md, Kafka).
 *
 * <p>Known limit: a corrupt length prefix can make Avro allocate up to that length before it notices the input is
 * shorter. Bound it JVM-wide with {@code -Dorg.apache.avro.limits.string.maxLength} and
 * {@code -Dorg.apache.avro.limits.bytes.maxLength}.
 */
public final class StrictAvroDecoder<T extends SpecificRecord> implements Serializable {

    private static final long serialVersionUID = 1L;

    private final Class<T> type;
    private transient SpecificDatumReader<T> reader;
    private transient BinaryDecoder decoder;

    public StrictAvroDecoder(Class<T> type) {
        this.type = type;
    }

    public Class<T> type() {
        return type;
    }

    /** Not thread-safe: one instance per operator instance. */
    public T decode(byte[] bytes) throws IOException {
        if (bytes == null) {
            throw new IOException("null value (tombstone)");
        }
        if (reader == null) {
            reader = new SpecificDatumReader<>(type);
        }
        decoder = DecoderFactory.get().binaryDecoder(bytes, decoder);
        T value;
        try {
            value = reader.read(null, decoder);
        } catch (IOException e) {
            throw e;
        } catch (RuntimeException e) {
            throw new IOException("malformed " + type.getSimpleName() + ": " + e, e);
        }
        if (!decoder.isEnd()) {
            throw new IOException("trailing bytes after a complete " + type.getSimpleName() + " (" + bytes.length
                    + " bytes in all): not one record of this type");
        }
        return value;
    }
}
