package org.starflink.operators.kafka;

import java.io.IOException;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.List;
import org.apache.avro.Schema;
import org.apache.avro.io.BinaryDecoder;
import org.apache.avro.io.DecoderFactory;
import org.apache.avro.specific.SpecificData;
import org.apache.avro.specific.SpecificDatumReader;
import org.apache.avro.specific.SpecificRecord;
import org.starflink.schemas.WireSchemas;

/**
 * Decodes plain Avro binary (what {@code AvroSerializationSchema.forSpecific} writes: no header, no schema id)
 * into a generated class, and refuses anything that is not exactly one record.
 *
 * <p>Avro binary has no framing, so random bytes often "decode" into something; this decoder additionally rejects
 * input with bytes left over after the record, and turns the runtime exceptions Avro throws on malformed input
 * (bad union index, negative length, ...) into {@link IOException}s.
 *
 * <p>Older records: the bytes carry no writer schema, so they are first read as the current schema; if that fails,
 * as each released older schema of the type ({@link WireSchemas}), newest first, with Avro's schema resolution
 * filling the fields added since with their defaults. A record of an older producer therefore still decodes. The
 * price of having no schema id: a current record cut off exactly where an older version ended decodes as that older
 * version (e.g. a Question without its last field) instead of being refused.
 *
 * <p>Sizes are checked before anything is allocated: Avro itself allocates what a length prefix claims (a corrupt
 * or hostile one: a 1 GB string in a 30-byte record) before it notices the input is shorter, so the reader reads
 * through a {@link BoundedDecoder}, which refuses any length larger than the record.
 */
public final class StrictAvroDecoder<T extends SpecificRecord> implements Serializable {

    private static final long serialVersionUID = 1L;

    private final Class<T> type;
    /** The current schema's reader first, then one per older writer schema. */
    private transient List<SpecificDatumReader<T>> readers;
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
        if (readers == null) {
            readers = readers(type);
        }
        IOException asCurrent = null;
        for (SpecificDatumReader<T> reader : readers) {
            try {
                return decodeWith(reader, bytes);
            } catch (IOException e) {
                if (asCurrent == null) {
                    asCurrent = e; // the reason given is the current schema's
                }
            }
        }
        throw asCurrent;
    }

    private T decodeWith(SpecificDatumReader<T> reader, byte[] bytes) throws IOException {
        decoder = DecoderFactory.get().binaryDecoder(bytes, decoder);
        BoundedDecoder bounded = new BoundedDecoder(decoder, bytes.length);
        T value;
        try {
            value = reader.read(null, bounded);
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

    private static <T extends SpecificRecord> List<SpecificDatumReader<T>> readers(Class<T> type) {
        Schema current = SpecificData.get().getSchema(type);
        List<SpecificDatumReader<T>> readers = new ArrayList<>();
        readers.add(new SpecificDatumReader<>(type));
        for (Schema older : WireSchemas.olderWriters(current)) {
            readers.add(new SpecificDatumReader<>(older, current));
        }
        return readers;
    }
}
