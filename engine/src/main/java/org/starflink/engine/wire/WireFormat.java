package org.starflink.engine.wire;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.starflink.engine.EngineException;

/**
 * The compact binary forms of the values the streaming job stores and ships: little-endian, a one-byte type
 * tag and a one-byte version first, then fixed fields, then raw float32/int32 arrays. No field names, no
 * per-element framing: a KV page of 64 tokens x 256 floats x 2 is 131 KiB of floats plus 16 bytes.
 */
final class WireFormat {
    static final byte VERSION = 1;

    private WireFormat() {
    }

    static ByteBuffer allocate(int bytes, byte tag) {
        ByteBuffer buffer = ByteBuffer.allocate(bytes).order(ByteOrder.LITTLE_ENDIAN);
        buffer.put(tag).put(VERSION);
        return buffer;
    }

    static ByteBuffer open(byte[] bytes, byte tag, String what) {
        ByteBuffer buffer = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        if (bytes.length < 2 || buffer.get() != tag) {
            throw new EngineException("not a serialized " + what);
        }
        byte version = buffer.get();
        if (version != VERSION) {
            throw new EngineException("unsupported " + what + " version " + version + " (this build reads " + VERSION
                    + ")");
        }
        return buffer;
    }

    static void putFloats(ByteBuffer buffer, float[] values, int offset, int count) {
        buffer.asFloatBuffer().put(values, offset, count);
        buffer.position(buffer.position() + count * Float.BYTES);
    }

    static float[] getFloats(ByteBuffer buffer, int count) {
        float[] values = new float[count];
        buffer.asFloatBuffer().get(values);
        buffer.position(buffer.position() + count * Float.BYTES);
        return values;
    }

    static void putInts(ByteBuffer buffer, int[] values) {
        buffer.asIntBuffer().put(values);
        buffer.position(buffer.position() + values.length * Integer.BYTES);
    }

    static int[] getInts(ByteBuffer buffer, int count) {
        int[] values = new int[count];
        buffer.asIntBuffer().get(values);
        buffer.position(buffer.position() + count * Integer.BYTES);
        return values;
    }
}
