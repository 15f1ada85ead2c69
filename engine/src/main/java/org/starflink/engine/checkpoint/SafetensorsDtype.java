package org.starflink.engine.checkpoint;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.ShortBuffer;
import org.starflink.engine.numeric.Bf16;

/** The safetensors element types the engine reads, each widened to float32. */
enum SafetensorsDtype {
    F32(4),
    F16(2),
    BF16(2);

    /** Every F16 bit pattern's float value: widening by table lookup keeps multi-GB tensors cheap to load. */
    private static final float[] F16_TO_FLOAT = halfTable();
    private static final int SCRATCH_ELEMENTS = 8192;

    final int bytes;

    SafetensorsDtype(int bytes) {
        this.bytes = bytes;
    }

    /** The dtype named {@code name} in a safetensors header, or null when the engine cannot read it. */
    static SafetensorsDtype forName(String name) {
        for (SafetensorsDtype dtype : values()) {
            if (dtype.name().equals(name)) {
                return dtype;
            }
        }
        return null;
    }

    /**
     * Widens {@code count} little-endian elements starting at {@code source}'s position into
     * {@code target[offset ...]}. The source buffer must already be little-endian.
     */
    void widen(ByteBuffer source, float[] target, int offset, int count) {
        if (this == F32) {
            source.asFloatBuffer().get(target, offset, count);
            return;
        }
        ShortBuffer halves = source.asShortBuffer();
        short[] scratch = new short[Math.min(count, SCRATCH_ELEMENTS)];
        for (int done = 0; done < count; ) {
            int n = Math.min(scratch.length, count - done);
            halves.get(scratch, 0, n);
            for (int i = 0; i < n; i++) {
                target[offset + done + i] = this == BF16 ? bf16ToFloat(scratch[i]) : F16_TO_FLOAT[scratch[i] & 0xffff];
            }
            done += n;
        }
    }

    /**
     * Converts {@code count} little-endian elements starting at {@code source}'s position into BF16 bits at
     * {@code target[offset ...]}: a copy for BF16, round to nearest even for F32 and F16.
     */
    void toBf16(ByteBuffer source, short[] target, int offset, int count) {
        if (this == BF16) {
            source.asShortBuffer().get(target, offset, count);
            return;
        }
        float[] scratch = new float[Math.min(count, SCRATCH_ELEMENTS)];
        for (int done = 0; done < count; ) {
            int n = Math.min(scratch.length, count - done);
            widen(source.slice(source.position() + done * bytes, n * bytes).order(ByteOrder.LITTLE_ENDIAN),
                    scratch, 0, n);
            for (int i = 0; i < n; i++) {
                target[offset + done + i] = Bf16.fromFloat(scratch[i]);
            }
            done += n;
        }
    }

    /** BF16 is the high half of an F32: widening is exact. */
    private static float bf16ToFloat(short bits) {
        return Float.intBitsToFloat((bits & 0xffff) << 16);
    }

    private static float[] halfTable() {
        float[] table = new float[1 << 16];
        for (int bits = 0; bits < table.length; bits++) {
            int sign = (bits & 0x8000) << 16;
            int exponent = (bits >>> 10) & 0x1f;
            int mantissa = bits & 0x3ff;
            if (exponent == 0) {
                // Zero or subnormal: mantissa * 2^-24, computed exactly in float.
                float magnitude = mantissa * 0x1p-24f;
                table[bits] = sign == 0 ? magnitude : -magnitude;
            } else if (exponent == 0x1f) {
                table[bits] = Float.intBitsToFloat(sign | 0x7f800000 | (mantissa << 13));
            } else {
                // Rebias the exponent from 15 to 127.
                table[bits] = Float.intBitsToFloat(sign | ((exponent + 112) << 23) | (mantissa << 13));
            }
        }
        return table;
    }
}
