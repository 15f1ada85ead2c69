package org.starflink.operators.kafka;

import java.io.IOException;
import java.nio.ByteBuffer;
import org.apache.avro.io.BinaryDecoder;
import org.apache.avro.io.Decoder;
import org.apache.avro.util.Utf8;

/**
 * Avro binary decoding of one record held in memory, with every length it reads (strings, bytes, array and map
 * blocks) checked against the record's own size before anything is allocated. Avro's {@link BinaryDecoder}
 * allocates what a length prefix claims and only then notices that the input is shorter: a 30-byte record
 * claiming a 1 GB string would allocate 1 GB. Here no string or bytes value can be longer than the record, and no
 * block can hold more items than the record has bytes (every item of our schemas takes at least one byte).
 *
 * <p>The wire format is Avro's (a string or bytes value is a long length and that many bytes); everything but the
 * length checks is the wrapped {@link BinaryDecoder}'s.
 */
final class BoundedDecoder extends Decoder {
    private final BinaryDecoder in;
    /** The record's size in bytes: no length inside it can be larger. */
    private final int recordBytes;

    BoundedDecoder(BinaryDecoder in, int recordBytes) {
        this.in = in;
        this.recordBytes = recordBytes;
    }

    boolean isEnd() throws IOException {
        return in.isEnd();
    }

    /** The one rule: a length read from the input is at least 0 and at most the record's size. */
    private int checked(long length, String what, String unit) throws IOException {
        if (length < 0) {
            throw new IOException(what + " of negative length " + length);
        }
        if (length > recordBytes) {
            throw new IOException(what + " of " + length + " " + unit + " claimed in a record of " + recordBytes
                    + " bytes");
        }
        return (int) length;
    }

    @Override
    public Utf8 readString(Utf8 old) throws IOException {
        int length = checked(in.readLong(), "a string", "bytes");
        Utf8 result = old != null ? old : new Utf8();
        result.setByteLength(length);
        in.readFixed(result.getBytes(), 0, length);
        return result;
    }

    @Override
    public String readString() throws IOException {
        return readString(null).toString();
    }

    @Override
    public void skipString() throws IOException {
        in.skipFixed(checked(in.readLong(), "a string", "bytes"));
    }

    @Override
    public ByteBuffer readBytes(ByteBuffer old) throws IOException {
        int length = checked(in.readLong(), "a bytes value", "bytes");
        ByteBuffer result = old != null && old.hasArray() && old.capacity() >= length ? old : ByteBuffer.allocate(length);
        result.clear();
        in.readFixed(result.array(), result.arrayOffset(), length);
        result.limit(length);
        return result;
    }

    @Override
    public void skipBytes() throws IOException {
        in.skipFixed(checked(in.readLong(), "a bytes value", "bytes"));
    }

    @Override
    public long readArrayStart() throws IOException {
        return checked(in.readArrayStart(), "an array block", "items");
    }

    @Override
    public long arrayNext() throws IOException {
        return checked(in.arrayNext(), "an array block", "items");
    }

    @Override
    public long skipArray() throws IOException {
        return checked(in.skipArray(), "an array block", "items");
    }

    @Override
    public long readMapStart() throws IOException {
        return checked(in.readMapStart(), "a map block", "entries");
    }

    @Override
    public long mapNext() throws IOException {
        return checked(in.mapNext(), "a map block", "entries");
    }

    @Override
    public long skipMap() throws IOException {
        return checked(in.skipMap(), "a map block", "entries");
    }

    @Override
    public void readNull() throws IOException {
        in.readNull();
    }

    @Override
    public boolean readBoolean() throws IOException {
        return in.readBoolean();
    }

    @Override
    public int readInt() throws IOException {
        return in.readInt();
    }

    @Override
    public long readLong() throws IOException {
        return in.readLong();
    }

    @Override
    public float readFloat() throws IOException {
        return in.readFloat();
    }

    @Override
    public double readDouble() throws IOException {
        return in.readDouble();
    }

    @Override
    public void readFixed(byte[] bytes, int start, int length) throws IOException {
        in.readFixed(bytes, start, length); // the length comes from the schema, not from the input
    }

    @Override
    public void skipFixed(int length) throws IOException {
        in.skipFixed(length);
    }

    @Override
    public int readEnum() throws IOException {
        return in.readEnum();
    }

    @Override
    public int readIndex() throws IOException {
        return in.readIndex();
    }
}
