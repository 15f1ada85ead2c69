package org.starflink.engine.wire;

import java.nio.ByteBuffer;
import org.starflink.engine.EngineException;
import org.starflink.engine.attention.AttentionPartial;
import org.starflink.engine.star.LayerRequest;

/** Binary forms of what phase 2 ships per layer: the host's request and a block's partial. */
public final class PhaseTwoCodec {
    private static final byte REQUEST_TAG = 'Q';
    private static final byte PARTIAL_TAG = 'P';

    private PhaseTwoCodec() {
    }

    public static byte[] toBytes(LayerRequest request) {
        int rows = request.rows();
        ByteBuffer buffer = WireFormat.allocate(2 + 2 * Integer.BYTES + rows * Integer.BYTES
                + request.q().length * Float.BYTES, REQUEST_TAG);
        buffer.putInt(request.layer()).putInt(rows);
        WireFormat.putInts(buffer, request.positions());
        WireFormat.putFloats(buffer, request.q(), 0, request.q().length);
        return buffer.array();
    }

    public static LayerRequest requestFromBytes(byte[] bytes) {
        ByteBuffer buffer = WireFormat.open(bytes, REQUEST_TAG, "layer request");
        int layer = buffer.getInt();
        int rows = buffer.getInt();
        int[] positions = WireFormat.getInts(buffer, rows);
        int floats = buffer.remaining() / Float.BYTES;
        if (rows <= 0 || floats % rows != 0 || buffer.remaining() % Float.BYTES != 0) {
            throw new EngineException("corrupt layer request");
        }
        return new LayerRequest(layer, positions, WireFormat.getFloats(buffer, floats));
    }

    public static byte[] toBytes(AttentionPartial partial) {
        ByteBuffer buffer = WireFormat.allocate(2 + 2 * Integer.BYTES
                + (partial.output().length + partial.lse().length) * Float.BYTES, PARTIAL_TAG);
        buffer.putInt(partial.rows()).putInt(partial.heads());
        WireFormat.putFloats(buffer, partial.lse(), 0, partial.lse().length);
        WireFormat.putFloats(buffer, partial.output(), 0, partial.output().length);
        return buffer.array();
    }

    public static AttentionPartial partialFromBytes(byte[] bytes) {
        ByteBuffer buffer = WireFormat.open(bytes, PARTIAL_TAG, "attention partial");
        int rows = buffer.getInt();
        int heads = buffer.getInt();
        float[] lse = WireFormat.getFloats(buffer, rows * heads);
        float[] output = WireFormat.getFloats(buffer, buffer.remaining() / Float.BYTES);
        return new AttentionPartial(rows, heads, output, lse);
    }
}
