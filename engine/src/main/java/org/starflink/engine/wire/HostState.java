package org.starflink.engine.wire;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import org.starflink.engine.EngineException;

/**
 * A query host's whole state on the host, for Flink keyed state: its own KV as pages, the next position, and the
 * pass in progress (the residual stream entering the current layer and, between a layer's request and its
 * completion, the layer's query rows).
 *
 * <p>Binary form, version 2 (tag 'H', little-endian through {@link WireFormat}): next position, layer, then
 * length-prefixed positions, x, q, logits, and the pages. Version 1 (a hand-written big-endian form, first byte
 * 1, which also held float32 KV and the host's own partial) is not migrated: restoring it fails with a message
 * that says so. Query hosts live only as long as their question, so a job upgraded from a savepoint taken with no
 * question in flight never meets one.
 *
 * @param nextPosition the next token's position
 * @param layer        the layer in progress, or -1 between passes
 * @param positions    [T] the rows of the pass in progress, or null
 * @param x            [T, dim] the residual stream entering {@code layer}, or null
 * @param q            [T, H, hd] the query rows of {@code layer} awaiting their partials, or null
 * @param logits       [vocab] after the last completed pass, or null
 * @param pages        the host's own KV
 */
public record HostState(int nextPosition, int layer, int[] positions, float[] x, float[] q, float[] logits,
                        List<KvPage> pages) {
    private static final byte TAG = 'H';
    private static final byte VERSION = 2;
    private static final byte LEGACY_VERSION_1 = 1;

    public HostState {
        pages = List.copyOf(pages);
    }

    /** The same state with {@code kvPages} as its KV. */
    public HostState withPages(List<KvPage> kvPages) {
        return new HostState(nextPosition, layer, positions, x, q, logits, kvPages);
    }

    public byte[] toBytes() {
        List<byte[]> encodedPages = new ArrayList<>(pages.size());
        int size = 2 + 3 * Integer.BYTES + WireFormat.intsBytes(positions) + WireFormat.floatsBytes(x)
                + WireFormat.floatsBytes(q) + WireFormat.floatsBytes(logits);
        for (KvPage page : pages) {
            byte[] bytes = page.toBytes();
            encodedPages.add(bytes);
            size += WireFormat.bytesBytes(bytes);
        }
        ByteBuffer buffer = WireFormat.allocate(size, TAG, VERSION);
        buffer.putInt(nextPosition).putInt(layer);
        WireFormat.putInts(buffer, positions, true);
        WireFormat.putFloats(buffer, x);
        WireFormat.putFloats(buffer, q);
        WireFormat.putFloats(buffer, logits);
        buffer.putInt(encodedPages.size());
        for (byte[] bytes : encodedPages) {
            WireFormat.putBytes(buffer, bytes);
        }
        return buffer.array();
    }

    public static HostState fromBytes(byte[] bytes) {
        if (bytes.length > 0 && bytes[0] == LEGACY_VERSION_1) {
            throw new EngineException("query host state of format 1 (float32 KV, before this release) cannot be "
                    + "restored: finish or cancel the questions in flight, then take the savepoint again");
        }
        ByteBuffer buffer = WireFormat.open(bytes, TAG, "query host state", VERSION);
        try {
            int nextPosition = buffer.getInt();
            int layer = buffer.getInt();
            int[] positions = WireFormat.getInts(buffer);
            float[] x = WireFormat.getFloats(buffer);
            float[] q = WireFormat.getFloats(buffer);
            float[] logits = WireFormat.getFloats(buffer);
            int pageCount = buffer.getInt();
            if (pageCount < 0 || pageCount > buffer.remaining() / Integer.BYTES) {
                throw new EngineException("corrupt query host state: " + pageCount + " pages");
            }
            List<KvPage> pages = new ArrayList<>(pageCount);
            for (int i = 0; i < pageCount; i++) {
                pages.add(KvPage.fromBytes(WireFormat.getBytes(buffer)));
            }
            if (buffer.hasRemaining()) {
                throw new EngineException("corrupt query host state: " + buffer.remaining() + " trailing bytes");
            }
            return new HostState(nextPosition, layer, positions, x, q, logits, pages);
        } catch (java.nio.BufferUnderflowException | NullPointerException e) {
            throw new EngineException("corrupt query host state: truncated", e);
        }
    }
}
