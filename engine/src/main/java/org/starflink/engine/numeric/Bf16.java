package org.starflink.engine.numeric;

/** bfloat16 bit conversions: BF16 is the high half of an IEEE float32. */
public final class Bf16 {
    private Bf16() {
    }

    /** Widening is exact. */
    public static float toFloat(short bits) {
        return Float.intBitsToFloat((bits & 0xffff) << 16);
    }

    /** Round to nearest, ties to even (as PyTorch and CUDA's __float2bfloat16 do); NaN stays NaN. */
    public static short fromFloat(float value) {
        int bits = Float.floatToRawIntBits(value);
        if ((bits & 0x7fffffff) > 0x7f800000) {
            return (short) ((bits >>> 16) | 0x0040); // quiet NaN
        }
        return (short) ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16);
    }
}
