package org.starflink.engine.testing;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/** The floating-point formats a test checkpoint can be written in, with round-to-nearest-even encoding. */
public enum FloatFormat {
    F32(4),
    F16(2),
    BF16(2);

    public final int bytes;

    FloatFormat(int bytes) {
        this.bytes = bytes;
    }

    /** {@code value} rounded to this format and widened back: exactly what a reader must get. */
    public float round(float value) {
        return switch (this) {
            case F16 -> halfToFloat(toHalf(value));
            case BF16 -> Float.intBitsToFloat((toBf16(value) & 0xffff) << 16);
            case F32 -> value;
        };
    }

    /** Little-endian bytes of {@code values} in this format, as in a safetensors data section. */
    public byte[] encode(float[] values) {
        ByteBuffer out = ByteBuffer.allocate(values.length * bytes).order(ByteOrder.LITTLE_ENDIAN);
        for (float value : values) {
            switch (this) {
                case F16 -> out.putShort(toHalf(value));
                case BF16 -> out.putShort(toBf16(value));
                case F32 -> out.putFloat(value);
            }
        }
        return out.array();
    }

    private static short toBf16(float value) {
        int bits = Float.floatToRawIntBits(value);
        if (Float.isNaN(value)) {
            return (short) ((bits >>> 16) | 0x40);
        }
        return (short) ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16);
    }

    private static short toHalf(float value) {
        int bits = Float.floatToRawIntBits(value);
        int sign = (bits >>> 16) & 0x8000;
        int magnitude = bits & 0x7fffffff;
        if (magnitude > 0x7f800000) {
            return (short) (sign | 0x7e00);
        }
        if (magnitude >= 0x477ff000) { // at or above 65520, which rounds to infinity
            return (short) (sign | 0x7c00);
        }
        if (magnitude < 0x38800000) { // below 2^-14: a half subnormal, m * 2^-24
            return (short) (sign | (int) Math.rint(Float.intBitsToFloat(magnitude) * 0x1p24f));
        }
        int rounded = magnitude + 0xfff + ((magnitude >>> 13) & 1);
        return (short) (sign | ((rounded - 0x38000000) >>> 13));
    }

    private static float halfToFloat(short half) {
        int bits = half & 0xffff;
        int exponent = (bits >>> 10) & 0x1f;
        int mantissa = bits & 0x3ff;
        float magnitude = exponent == 0 ? mantissa * 0x1p-24f
                : exponent == 0x1f ? (mantissa == 0 ? Float.POSITIVE_INFINITY : Float.NaN)
                : (1 + mantissa * 0x1p-10f) * (float) Math.pow(2, exponent - 15);
        return (bits & 0x8000) == 0 ? magnitude : -magnitude;
    }
}
