package org.starflink.engine.wire;

import java.nio.ByteBuffer;
import org.starflink.engine.EngineException;

/**
 * A fixed-size slice of a context block's KV: one layer, up to {@code pageTokens} consecutive tokens of the
 * block. Blocks are stored as pages so that no single state value grows with the block (RocksDB values must stay
 * under 2 GiB and are deserialized whole on access) and so that extending a block rewrites only its last page.
 *
 * @param layer         decoder layer
 * @param page          page index within the block: tokens [page * pageTokens, page * pageTokens + count)
 * @param firstPosition global position of the page's first token (the page's tokens are consecutive)
 * @param count         tokens in this page (the last page of a block may be partly filled)
 * @param keys          [count, Hkv, headDim]
 * @param values        [count, Hkv, headDim]
 */
public record KvPage(int layer, int page, int firstPosition, int count, float[] keys, float[] values) {
    private static final byte TAG = 'K';
    private static final int HEADER = 2 + 4 * Integer.BYTES;

    public KvPage {
        if (keys.length != values.length || count <= 0 || keys.length % count != 0) {
            throw new IllegalArgumentException("KV page shape mismatch: count=" + count + " keys=" + keys.length
                    + " values=" + values.length);
        }
    }

    public int kvWidth() {
        return keys.length / count;
    }

    public byte[] toBytes() {
        ByteBuffer buffer = WireFormat.allocate(HEADER + 2 * keys.length * Float.BYTES, TAG);
        buffer.putInt(layer).putInt(page).putInt(firstPosition).putInt(count);
        WireFormat.putFloats(buffer, keys, 0, keys.length);
        WireFormat.putFloats(buffer, values, 0, values.length);
        return buffer.array();
    }

    public static KvPage fromBytes(byte[] bytes) {
        ByteBuffer buffer = WireFormat.open(bytes, TAG, "KV page");
        int layer = buffer.getInt();
        int page = buffer.getInt();
        int firstPosition = buffer.getInt();
        int count = buffer.getInt();
        int floats = (bytes.length - HEADER) / Float.BYTES / 2;
        if (count <= 0 || floats % count != 0 || HEADER + 2L * floats * Float.BYTES != bytes.length) {
            throw new EngineException("corrupt KV page: " + bytes.length + " bytes for " + count + " tokens");
        }
        return new KvPage(layer, page, firstPosition, count, WireFormat.getFloats(buffer, floats),
                WireFormat.getFloats(buffer, floats));
    }
}
