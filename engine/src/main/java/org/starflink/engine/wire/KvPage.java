package org.starflink.engine.wire;

import java.nio.ByteBuffer;
import org.starflink.engine.EngineException;
import org.starflink.engine.backend.KvPrecision;

/**
 * A fixed-size slice of a context block's (or a query host's) KV: one layer, up to {@code pageTokens}
 * consecutive tokens. KV is stored as pages so that no single state value grows with the block (RocksDB values
 * must stay under 2 GiB and are deserialized whole on access) and so that extending a block rewrites only its
 * last page.
 *
 * <p>Binary form, version 2: tag 'K', version, precision (0 = BF16, 1 = F32), layer, page, first position,
 * count (int32 each), then keys and values [count, Hkv, headDim] little-endian in that precision. Version 1 (no
 * precision byte, float32) was written before KV went BF16; it is still read, as an F32 page, and a BF16 cache
 * rounds it on restore (a migration: old state restores, with the same rounding a new encode would apply).
 *
 * @param layer         decoder layer
 * @param page          page index within the block: tokens [page * pageTokens, page * pageTokens + count)
 * @param firstPosition global position of the page's first token (the page's tokens are consecutive)
 * @param count         tokens in this page (the last page of a block may be partly filled)
 * @param precision     how keys and values are stored
 * @param keys          [count, Hkv, headDim] in {@code precision}, little-endian
 * @param values        [count, Hkv, headDim] in {@code precision}, little-endian
 */
public record KvPage(int layer, int page, int firstPosition, int count, KvPrecision precision, byte[] keys,
                     byte[] values) {
    private static final byte TAG = 'K';
    private static final byte VERSION = 2;
    private static final byte VERSION_1_F32 = 1;
    private static final int HEADER = 3 + 4 * Integer.BYTES;
    private static final int HEADER_V1 = 2 + 4 * Integer.BYTES;

    public KvPage {
        int rowBytes = count <= 0 ? 0 : keys.length / count;
        if (keys.length != values.length || count <= 0 || keys.length % count != 0
                || rowBytes % precision.bytes != 0) {
            throw new IllegalArgumentException("KV page shape mismatch: count=" + count + " keys=" + keys.length
                    + " values=" + values.length + " bytes of " + precision);
        }
    }

    /** Hkv * headDim. */
    public int kvWidth() {
        return keys.length / count / precision.bytes;
    }

    public byte[] toBytes() {
        ByteBuffer buffer = WireFormat.allocate(HEADER + 2 * keys.length, TAG, VERSION);
        buffer.put((byte) (precision == KvPrecision.BF16 ? 0 : 1));
        buffer.putInt(layer).putInt(page).putInt(firstPosition).putInt(count);
        buffer.put(keys).put(values);
        return buffer.array();
    }

    public static KvPage fromBytes(byte[] bytes) {
        ByteBuffer buffer = WireFormat.open(bytes, TAG, "KV page", VERSION_1_F32, VERSION);
        int version = bytes[1];
        KvPrecision precision = KvPrecision.F32;
        if (version == VERSION) {
            byte code = buffer.get();
            if (code != 0 && code != 1) {
                throw new EngineException("corrupt KV page: unknown precision code " + code);
            }
            precision = code == 0 ? KvPrecision.BF16 : KvPrecision.F32;
        }
        int layer = buffer.getInt();
        int page = buffer.getInt();
        int firstPosition = buffer.getInt();
        int count = buffer.getInt();
        int header = version == VERSION ? HEADER : HEADER_V1;
        int half = (bytes.length - header) / 2;
        if (count <= 0 || header + 2L * half != bytes.length || half % count != 0
                || (half / count) % precision.bytes != 0) {
            throw new EngineException("corrupt KV page: " + bytes.length + " bytes for " + count + " tokens");
        }
        byte[] keys = new byte[half];
        byte[] values = new byte[half];
        buffer.get(keys).get(values);
        return new KvPage(layer, page, firstPosition, count, precision, keys, values);
    }
}
