package org.starflink.engine.wire;

import java.nio.ByteBuffer;
import org.starflink.engine.EngineException;
import org.starflink.engine.attention.AttentionPartial;
import org.starflink.engine.attention.LayerRequest;

/**
 * Binary forms of what phase 2 ships per layer: the host's request (query rows, float32) and a block's partial
 * (output + lse, float32: merges and softmax statistics stay float32).
 */
public final class PhaseTwoCodec {
    private static final byte REQUEST_TAG = 'Q';
    private static final byte PARTIAL_TAG = 'P';
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
}
