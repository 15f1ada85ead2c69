package org.starflink.engine.wire;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.BiConsumer;
import java.util.function.Function;
import java.util.function.ToIntFunction;
import org.starflink.engine.EngineException;
import org.starflink.engine.attention.AttentionPartial;
import org.starflink.engine.attention.LayerRequest;

/**
 * Binary forms of what phase 2 ships per layer: the host's request (query rows, float32) and a block's partial
 * (output + lse, float32: merges and softmax statistics stay float32); and their batches, the requests of several
 * questions in one message to a block and its partials, one per request in the same order; and bundles: the
 * partial batches of several blocks of one layer, in one message back.
 *
 * <p>Nested values are length-prefixed, each with its own tag and version. A batch or bundle is written in one pass
 * into one array (sizes first, then the values), and read through views of that array: the floats are the only
 * thing copied, once each way (at 16 questions a layer's bundle is hundreds of KB).
 */
public final class PhaseTwoCodec {
    private static final byte REQUEST_TAG = 'Q';
    private static final byte PARTIAL_TAG = 'P';
    private static final byte REQUEST_BATCH_TAG = 'R';
    private static final byte PARTIAL_BATCH_TAG = 'B';
    private static final byte BUNDLE_TAG = 'U';
    private static final byte VERSION = 1;

    /** How one kind of value is sized, written and read, its tag and version included. */
    private record Form<T>(ToIntFunction<T> bytes, BiConsumer<ByteBuffer, T> put, Function<ByteBuffer, T> get) {
    }

    private static final Form<LayerRequest> REQUEST = new Form<>(PhaseTwoCodec::requestBytes,
            PhaseTwoCodec::putRequest, PhaseTwoCodec::getRequest);
    private static final Form<AttentionPartial> PARTIAL = new Form<>(PhaseTwoCodec::partialBytes,
            PhaseTwoCodec::putPartial, PhaseTwoCodec::getPartial);

    private PhaseTwoCodec() {
    }

    public static byte[] toBytes(LayerRequest request) {
        return encode(REQUEST, request);
    }

    public static LayerRequest requestFromBytes(byte[] bytes) {
        return getRequest(wrap(bytes));
    }

    public static byte[] toBytes(AttentionPartial partial) {
        return encode(PARTIAL, partial);
    }

    public static AttentionPartial partialFromBytes(byte[] bytes) {
        return getPartial(wrap(bytes));
    }

    /** Several questions' requests for one layer, in the order their partials come back. */
    public static byte[] requestsToBytes(List<LayerRequest> requests) {
        ByteBuffer buffer = ByteBuffer.allocate(batchBytes(requests, REQUEST)).order(ByteOrder.LITTLE_ENDIAN);
        putBatch(buffer, requests, REQUEST, REQUEST_BATCH_TAG);
        return buffer.array();
    }

    public static List<LayerRequest> requestsFromBytes(byte[] bytes) {
        return getBatch(wrap(bytes), REQUEST, REQUEST_BATCH_TAG, "layer request batch");
    }

    /**
     * The partial batches of several blocks for one layer in one message: {@code partialBatches.get(i)} (block
     * {@code blocks[i]}'s partials, one per request of its batch, in the batch's order) is block {@code blocks[i]}'s.
     * Blocks strictly ascending.
     */
    public static byte[] bundleToBytes(int[] blocks, List<List<AttentionPartial>> partialBatches) {
        if (blocks.length == 0 || blocks.length != partialBatches.size()) {
            throw new IllegalArgumentException(blocks.length + " blocks for " + partialBatches.size() + " batches");
        }
        int bytes = 2 + WireFormat.intsBytes(blocks);
        for (int i = 0; i < blocks.length; i++) {
            if (i > 0 && blocks[i] <= blocks[i - 1]) {
                throw new IllegalArgumentException("bundle blocks not ascending: " + Arrays.toString(blocks));
            }
            bytes += Integer.BYTES + batchBytes(partialBatches.get(i), PARTIAL);
        }
        ByteBuffer buffer = WireFormat.allocate(bytes, BUNDLE_TAG, VERSION);
        WireFormat.putInts(buffer, blocks, true);
        for (List<AttentionPartial> batch : partialBatches) {
            buffer.putInt(batchBytes(batch, PARTIAL));
            putBatch(buffer, batch, PARTIAL, PARTIAL_BATCH_TAG);
        }
        return buffer.array();
    }

    /** The blocks a bundle covers, ascending (its header only). */
    public static int[] bundleBlocks(byte[] bundle) {
        return bundleHeader(openBundle(bundle));
    }

    /** A decoded bundle: {@code partials.get(i)} is block {@code blocks[i]}'s partial batch. */
    public record PartialBundle(int[] blocks, List<List<AttentionPartial>> partials) {
    }

    public static PartialBundle bundleFromBytes(byte[] bundle) {
        ByteBuffer buffer = openBundle(bundle);
        int[] blocks = bundleHeader(buffer);
        List<List<AttentionPartial>> batches = new ArrayList<>(blocks.length);
        for (int block : blocks) {
            ByteBuffer batch = WireFormat.slice(buffer);
            if (batch == null) {
                throw new EngineException("corrupt partial bundle: block " + block + "'s batch is missing");
            }
            batches.add(getBatch(batch, PARTIAL, PARTIAL_BATCH_TAG, "attention partial batch"));
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

    private static int requestBytes(LayerRequest request) {
        return 2 + 2 * Integer.BYTES + request.rows() * Integer.BYTES + request.q().length * Float.BYTES;
    }

    private static void putRequest(ByteBuffer buffer, LayerRequest request) {
        buffer.put(REQUEST_TAG).put(VERSION).putInt(request.layer()).putInt(request.rows());
        WireFormat.putInts(buffer, request.positions(), false);
        WireFormat.putFloats(buffer, request.q(), 0, request.q().length);
    }

    /** From a buffer that holds one request, from its position to its limit. */
    private static LayerRequest getRequest(ByteBuffer buffer) {
        WireFormat.open(buffer, REQUEST_TAG, "layer request", VERSION);
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

    private static int partialBytes(AttentionPartial partial) {
        return 2 + 2 * Integer.BYTES + (partial.output().length + partial.lse().length) * Float.BYTES;
    }

    private static void putPartial(ByteBuffer buffer, AttentionPartial partial) {
        buffer.put(PARTIAL_TAG).put(VERSION).putInt(partial.rows()).putInt(partial.heads());
        WireFormat.putFloats(buffer, partial.lse(), 0, partial.lse().length);
        WireFormat.putFloats(buffer, partial.output(), 0, partial.output().length);
    }

    /** From a buffer that holds one partial, from its position to its limit. */
    private static AttentionPartial getPartial(ByteBuffer buffer) {
        WireFormat.open(buffer, PARTIAL_TAG, "attention partial", VERSION);
        int rows = buffer.getInt();
        int heads = buffer.getInt();
        if (rows <= 0 || heads <= 0) {
            throw new EngineException("corrupt attention partial: " + rows + " rows, " + heads + " heads");
        }
        float[] lse = WireFormat.getFloats(buffer, Math.multiplyExact(rows, heads));
        float[] output = WireFormat.getFloats(buffer, buffer.remaining() / Float.BYTES);
        return new AttentionPartial(rows, heads, output, lse);
    }

    private static <T> byte[] encode(Form<T> form, T value) {
        ByteBuffer buffer = ByteBuffer.allocate(form.bytes().applyAsInt(value)).order(ByteOrder.LITTLE_ENDIAN);
        form.put().accept(buffer, value);
        return buffer.array();
    }

    private static ByteBuffer wrap(byte[] bytes) {
        return ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
    }

    /** Bytes of a batch: tag, version, count, then each item length-prefixed. */
    private static <T> int batchBytes(List<T> items, Form<T> form) {
        int bytes = 2 + Integer.BYTES;
        for (T item : items) {
            bytes += Integer.BYTES + form.bytes().applyAsInt(item);
        }
        return bytes;
    }

    private static <T> void putBatch(ByteBuffer buffer, List<T> items, Form<T> form, byte tag) {
        buffer.put(tag).put(VERSION).putInt(items.size());
        for (T item : items) {
            buffer.putInt(form.bytes().applyAsInt(item));
            form.put().accept(buffer, item);
        }
    }

    /** From a buffer that holds one batch, from its position to its limit. */
    private static <T> List<T> getBatch(ByteBuffer buffer, Form<T> form, byte tag, String what) {
        WireFormat.open(buffer, tag, what, VERSION);
        int count = buffer.getInt();
        // Each item takes at least its 4-byte length: a count beyond that is corrupt, checked before allocating.
        if (count <= 0 || count > buffer.remaining() / Integer.BYTES) {
            throw new EngineException("corrupt " + what + ": " + count + " items");
        }
        List<T> items = new ArrayList<>(count);
        for (int i = 0; i < count; i++) {
            ByteBuffer one = WireFormat.slice(buffer);
            if (one == null) {
                throw new EngineException("corrupt " + what + ": item " + i + " is missing");
            }
            items.add(form.get().apply(one));
        }
        if (buffer.hasRemaining()) {
            throw new EngineException("corrupt " + what + ": " + buffer.remaining() + " bytes after the last item");
        }
        return items;
    }
}
