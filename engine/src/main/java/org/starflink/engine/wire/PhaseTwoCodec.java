package org.starflink.engine.wire;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.Function;
import org.starflink.engine.EngineException;
import org.starflink.engine.attention.AttentionPartial;
import org.starflink.engine.attention.LayerRequest;

/**
 * Binary forms of what phase 2 ships per layer: the host's request (query rows, float32) and a block's partial
 * (output + lse, float32: merges and softmax statistics stay float32); and their batches, the requests of several
 * questions in one message to a block and its partials, one per request in the same order, in one message back;
 * and bundles: the partial batches of several blocks of one layer, in one message.
 */
public final class PhaseTwoCodec {
    private static final byte REQUEST_TAG = 'Q';
    private static final byte PARTIAL_TAG = 'P';
    private static final byte REQUEST_BATCH_TAG = 'R';
    private static final byte PARTIAL_BATCH_TAG = 'B';
    private static final byte BUNDLE_TAG = 'U';
    private static final byte VERSION = 1;

    private PhaseTwoCodec() {
    }

    public static byte[] toBytes(LayerRequest request) {
        int rows = request.rows();
        ByteBuffer buffer = WireFormat.allocate(2 + 2 * Integer.BYTES + rows * Integer.BYTES
                + request.q().length * Float.BYTES, REQUEST_TAG, VERSION);
        buffer.putInt(request.layer()).putInt(rows);
        WireFormat.putInts(buffer, request.positions(), false);
        WireFormat.putFloats(buffer, request.q(), 0, request.q().length);
        return buffer.array();
    }

    public static LayerRequest requestFromBytes(byte[] bytes) {
        ByteBuffer buffer = WireFormat.open(bytes, REQUEST_TAG, "layer request", VERSION);
        int layer = buffer.getInt();
        int rows = buffer.getInt();
        if (rows <= 0) {
            throw new EngineException("corrupt layer request: " + rows + " rows");
        }
        int[] positions = WireFormat.getInts(buffer, rows);
        int floats = buffer.remaining() / Float.BYTES;
        if (floats % rows != 0 || buffer.remaining() % Float.BYTES != 0) {
            throw new EngineException("corrupt layer request");
        }
        return new LayerRequest(layer, positions, WireFormat.getFloats(buffer, floats));
    }

    public static byte[] toBytes(AttentionPartial partial) {
        ByteBuffer buffer = WireFormat.allocate(2 + 2 * Integer.BYTES
                + (partial.output().length + partial.lse().length) * Float.BYTES, PARTIAL_TAG, VERSION);
        buffer.putInt(partial.rows()).putInt(partial.heads());
        WireFormat.putFloats(buffer, partial.lse(), 0, partial.lse().length);
        WireFormat.putFloats(buffer, partial.output(), 0, partial.output().length);
        return buffer.array();
    }

    public static AttentionPartial partialFromBytes(byte[] bytes) {
        ByteBuffer buffer = WireFormat.open(bytes, PARTIAL_TAG, "attention partial", VERSION);
        int rows = buffer.getInt();
        int heads = buffer.getInt();
        if (rows <= 0 || heads <= 0) {
            throw new EngineException("corrupt attention partial: " + rows + " rows, " + heads + " heads");
        }
        float[] lse = WireFormat.getFloats(buffer, Math.multiplyExact(rows, heads));
        float[] output = WireFormat.getFloats(buffer, buffer.remaining() / Float.BYTES);
        return new AttentionPartial(rows, heads, output, lse);
    }

    /** Several questions' requests for one layer, in the order their partials come back. */
    public static byte[] requestsToBytes(List<LayerRequest> requests) {
        return batchToBytes(requests, PhaseTwoCodec::toBytes, REQUEST_BATCH_TAG);
    }

    public static List<LayerRequest> requestsFromBytes(byte[] bytes) {
        return batchFromBytes(bytes, PhaseTwoCodec::requestFromBytes, REQUEST_BATCH_TAG, "layer request batch");
    }

    /** A block's partials for a request batch, one per request, in the batch's order. */
    public static byte[] partialsToBytes(List<AttentionPartial> partials) {
        return batchToBytes(partials, PhaseTwoCodec::toBytes, PARTIAL_BATCH_TAG);
    }

    public static List<AttentionPartial> partialsFromBytes(byte[] bytes) {
        return batchFromBytes(bytes, PhaseTwoCodec::partialFromBytes, PARTIAL_BATCH_TAG, "attention partial batch");
    }

    /**
     * The partial batches of several blocks for one layer in one message: {@code partialBatches.get(i)} (a
     * {@link #partialsToBytes} batch) is block {@code blocks[i]}'s. Blocks strictly ascending.
     */
    public static byte[] bundleToBytes(int[] blocks, List<byte[]> partialBatches) {
        if (blocks.length == 0 || blocks.length != partialBatches.size()) {
            throw new IllegalArgumentException(blocks.length + " blocks for " + partialBatches.size() + " batches");
        }
        int bytes = 2 + WireFormat.intsBytes(blocks);
        for (int i = 0; i < blocks.length; i++) {
            if (i > 0 && blocks[i] <= blocks[i - 1]) {
                throw new IllegalArgumentException("bundle blocks not ascending: " + Arrays.toString(blocks));
            }
            bytes += WireFormat.bytesBytes(partialBatches.get(i));
        }
        ByteBuffer buffer = WireFormat.allocate(bytes, BUNDLE_TAG, VERSION);
        WireFormat.putInts(buffer, blocks, true);
        partialBatches.forEach(batch -> WireFormat.putBytes(buffer, batch));
        return buffer.array();
    }

    /** The blocks a bundle covers, ascending (its header only). */
    public static int[] bundleBlocks(byte[] bundle) {
        return bundleHeader(openBundle(bundle));
    }

    /** A decoded bundle: {@code batches.get(i)} is block {@code blocks[i]}'s partial batch. */
    public record PartialBundle(int[] blocks, List<byte[]> batches) {
    }

    public static PartialBundle bundleFromBytes(byte[] bundle) {
        ByteBuffer buffer = openBundle(bundle);
        int[] blocks = bundleHeader(buffer);
        List<byte[]> batches = new ArrayList<>(blocks.length);
        for (int block : blocks) {
            byte[] batch = WireFormat.getBytes(buffer);
            if (batch == null) {
                throw new EngineException("corrupt partial bundle: block " + block + "'s batch is missing");
            }
            batches.add(batch);
        }
        if (buffer.hasRemaining()) {
            throw new EngineException("corrupt partial bundle: " + buffer.remaining() + " bytes after the last batch");
        }
        return new PartialBundle(blocks, batches);
    }

    private static ByteBuffer openBundle(byte[] bundle) {
        return WireFormat.open(bundle, BUNDLE_TAG, "partial bundle", VERSION);
    }

    private static int[] bundleHeader(ByteBuffer buffer) {
        int[] blocks = WireFormat.getInts(buffer);
        if (blocks == null || blocks.length == 0) {
            throw new EngineException("corrupt partial bundle: no blocks");
        }
        return blocks;
    }

    private static <T> byte[] batchToBytes(List<T> items, Function<T, byte[]> encode, byte tag) {
        List<byte[]> encoded = new ArrayList<>(items.size());
        int bytes = 2 + Integer.BYTES;
        for (T item : items) {
            byte[] one = encode.apply(item);
            encoded.add(one);
            bytes += WireFormat.bytesBytes(one);
        }
        ByteBuffer buffer = WireFormat.allocate(bytes, tag, VERSION);
        buffer.putInt(encoded.size());
        encoded.forEach(one -> WireFormat.putBytes(buffer, one));
        return buffer.array();
    }

    private static <T> List<T> batchFromBytes(byte[] bytes, Function<byte[], T> decode, byte tag, String what) {
        ByteBuffer buffer = WireFormat.open(bytes, tag, what, VERSION);
        int count = buffer.getInt();
        // Each item takes at least its 4-byte length: a count beyond that is corrupt, checked before allocating.
        if (count <= 0 || count > buffer.remaining() / Integer.BYTES) {
            throw new EngineException("corrupt " + what + ": " + count + " items");
        }
        List<T> items = new ArrayList<>(count);
        for (int i = 0; i < count; i++) {
            byte[] one = WireFormat.getBytes(buffer);
            if (one == null) {
                throw new EngineException("corrupt " + what + ": item " + i + " is missing");
            }
            items.add(decode.apply(one));
        }
        if (buffer.hasRemaining()) {
            throw new EngineException("corrupt " + what + ": " + buffer.remaining() + " bytes after the last item");
        }
        return items;
    }
}
