package org.starflink.engine.wire;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.starflink.engine.EngineException;

/**
 * The compact binary forms of the values the streaming job stores and ships: little-endian, a one-byte type
 * tag and a one-byte version first, then fixed fields, then raw arrays. No field names, no per-element framing:
 * a BF16 KV page of 64 tokens x 256 values x 2 is 64 KiB plus 19 bytes. Each type versions itself.
 */
final class WireFormat {

    private WireFormat() {
    }

    static ByteBuffer allocate(int bytes, byte tag, byte version) {
        ByteBuffer buffer = ByteBuffer.allocate(bytes).order(ByteOrder.LITTLE_ENDIAN);
        buffer.put(tag).put(version);
        return buffer;
    }

    /** Checks tag and version (one of {@code versions}) and returns the buffer positioned after them. */
    static ByteBuffer open(byte[] bytes, byte tag, String what, byte... versions) {
        return open(ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN), tag, what, versions);
    }

    /** {@link #open(byte[], byte, String, byte...)} of a value that starts at the buffer's position. */
    static ByteBuffer open(ByteBuffer buffer, byte tag, String what, byte... versions) {
        if (buffer.remaining() < 2 || buffer.get() != tag) {
            throw new EngineException("not a serialized " + what);
        }
        byte version = buffer.get();
        for (byte known : versions) {
            if (version == known) {
                return buffer;
            }
        }
        throw new EngineException("unsupported " + what + " version " + version + " (this build reads "
                + java.util.Arrays.toString(versions) + ")");
    }

    /** Bytes of a float array written by {@link #putFloats} (length prefix included). */
    static int floatsBytes(float[] values) {
        return Integer.BYTES + (values == null ? 0 : values.length * Float.BYTES);
    }

    static int intsBytes(int[] values) {
        return Integer.BYTES + (values == null ? 0 : values.length * Integer.BYTES);
    }

    static int bytesBytes(byte[] values) {
        return Integer.BYTES + (values == null ? 0 : values.length);
    }

    /** A length-prefixed float array; null is length -1. */
    static void putFloats(ByteBuffer buffer, float[] values) {
        buffer.putInt(values == null ? -1 : values.length);
        if (values != null) {
            putFloats(buffer, values, 0, values.length);
        }
    }

    static float[] getFloats(ByteBuffer buffer) {
        int n = length(buffer, Float.BYTES);
        return n < 0 ? null : getFloats(buffer, n);
    }

    static void putInts(ByteBuffer buffer, int[] values, boolean prefixed) {
        if (prefixed) {
            buffer.putInt(values == null ? -1 : values.length);
        }
        if (values != null) {
            buffer.asIntBuffer().put(values);
            buffer.position(buffer.position() + values.length * Integer.BYTES);
        }
    }

    static int[] getInts(ByteBuffer buffer) {
        int n = length(buffer, Integer.BYTES);
        return n < 0 ? null : getInts(buffer, n);
    }

    static void putBytes(ByteBuffer buffer, byte[] values) {
        buffer.putInt(values == null ? -1 : values.length);
        if (values != null) {
            buffer.put(values);
        }
    }

    /**
     * A value written by {@link #putBytes}, as a little-endian view of its bytes (no copy; null for a null value);
     * the buffer moves past it.
     */
    static ByteBuffer slice(ByteBuffer buffer) {
        int n = length(buffer, 1);
        if (n < 0) {
            return null;
        }
        ByteBuffer value = buffer.slice(buffer.position(), n).order(ByteOrder.LITTLE_ENDIAN);
        buffer.position(buffer.position() + n);
        return value;
    }

    static byte[] getBytes(ByteBuffer buffer) {
        int n = length(buffer, 1);
        if (n < 0) {
            return null;
        }
        byte[] values = new byte[n];
        buffer.get(values);
        return values;
    }

    static void putFloats(ByteBuffer buffer, float[] values, int offset, int count) {
        buffer.asFloatBuffer().put(values, offset, count);
        buffer.position(buffer.position() + count * Float.BYTES);
    }

    static float[] getFloats(ByteBuffer buffer, int count) {
        requireRemaining(buffer, (long) count * Float.BYTES);
        float[] values = new float[count];
        buffer.asFloatBuffer().get(values);
        buffer.position(buffer.position() + count * Float.BYTES);
        return values;
    }

    static int[] getInts(ByteBuffer buffer, int count) {
        requireRemaining(buffer, (long) count * Integer.BYTES);
        int[] values = new int[count];
        buffer.asIntBuffer().get(values);
        buffer.position(buffer.position() + count * Integer.BYTES);
        return values;
    }

    /** A length prefix, checked against what is left (so that a corrupt length never allocates). */
    private static int length(ByteBuffer buffer, int elementBytes) {
        int n = buffer.getInt();
        if (n >= 0) {
            requireRemaining(buffer, (long) n * elementBytes);
        } else if (n != -1) {
            throw new EngineException("corrupt value: negative length " + n);
        }
        return n;
    }

    private static void requireRemaining(ByteBuffer buffer, long bytes) {
        if (bytes < 0 || bytes > buffer.remaining()) {
            throw new EngineException("corrupt value: " + bytes + " bytes needed, " + buffer.remaining() + " left");
        }
    }
}
