package org.starflink.engine.testing;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.starflink.engine.backend.Backend;
import org.starflink.engine.backend.KvCache;
import org.starflink.engine.backend.KvPrecision;
import org.starflink.engine.numeric.Bf16;

/** Test access to KV caches through their public interface: values as float32, copies, caches from arrays. */
public final class KvTesting {
    private KvTesting() {
    }

    /** One layer's keys [length, Hkv, hd] as float32 (widened exactly from BF16). */
    public static float[] keys(KvCache cache, int layer) {
        return floats(cache, layer, true);
    }

    /** One layer's values [length, Hkv, hd] as float32 (widened exactly from BF16). */
    public static float[] values(KvCache cache, int layer) {
        return floats(cache, layer, false);
    }

    private static float[] floats(KvCache cache, int layer, boolean keys) {
        int n = cache.length(layer) * cache.kvWidth();
        int bytes = n * cache.precision().bytes;
        ByteBuffer k = ByteBuffer.allocate(bytes).order(ByteOrder.LITTLE_ENDIAN);
        ByteBuffer v = ByteBuffer.allocate(bytes).order(ByteOrder.LITTLE_ENDIAN);
        cache.read(layer, 0, cache.length(layer), k, v);
        ByteBuffer source = (keys ? k : v).flip();
        float[] out = new float[n];
        for (int i = 0; i < n; i++) {
            out[i] = cache.precision() == KvPrecision.F32 ? source.getFloat() : Bf16.toFloat(source.getShort());
        }
        return out;
    }

    /** A new cache of {@code backend} holding tokens [from, to) of every layer of {@code cache}. */
    public static KvCache copyRange(Backend backend, KvCache cache, int from, int to) {
        KvCache copy = backend.newKvCache(to - from);
        int bytes = (to - from) * cache.kvWidth() * cache.precision().bytes;
        for (int layer = 0; layer < cache.layers(); layer++) {
            ByteBuffer k = ByteBuffer.allocate(bytes);
            ByteBuffer v = ByteBuffer.allocate(bytes);
            cache.read(layer, from, to, k, v);
            copy.write(layer, cache.positions(layer, from, to), cache.precision(), k.flip(), v.flip());
        }
        return copy;
    }

    /** A cache of {@code backend} whose layer 0 holds the given float32 keys and values [S, Hkv, hd]. */
    public static KvCache layerZero(Backend backend, int[] positions, float[] k, float[] v) {
        KvCache cache = backend.newKvCache(positions.length);
        cache.write(0, positions, KvPrecision.F32, f32(k), f32(v));
        return cache;
    }

    private static ByteBuffer f32(float[] values) {
        ByteBuffer buffer = ByteBuffer.allocate(values.length * Float.BYTES).order(ByteOrder.LITTLE_ENDIAN);
        buffer.asFloatBuffer().put(values);
        return buffer;
    }
}
