package org.starflink.gpu;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.starflink.engine.backend.HandleLedger;
import org.starflink.engine.backend.KvCache;
import org.starflink.engine.backend.KvPositions;
import org.starflink.engine.backend.KvPrecision;
import org.starflink.engine.backend.Tensor;
import org.starflink.engine.numeric.Bf16;

/**
 * A KV cache in device memory: per layer, keys and values BF16 [capacity, Hkv, headDim] and key positions int32
 * [capacity], the layout the attention kernel reads as is; growing by doubling (a device-to-device copy). The
 * positions are mirrored on the host for {@link #positions}. Pages cross to the host as raw BF16 bytes.
 */
final class GpuKvCache implements KvCache {
    private final GpuContext context;
    private final HandleLedger ledger;
    private final java.util.function.ToLongFunction<int[]> positionsOnDevice;
    private final int layers;
    private final int width;
    private final long[] keys;
    private final long[] values;
    private final long[] devicePositions;
    private final KvPositions positions;
    /** Tokens each layer's device buffers have room for. */
    private final int[] capacities;
    private boolean open = true;

    /**
     * @param positionsOnDevice the owning backend's device copy of a positions array (the pass's, already there):
     *                        appended positions are copied on the device, without a host round trip
     */
    GpuKvCache(GpuContext context, HandleLedger ledger, int layers, int kvWidth, int initialCapacity,
               java.util.function.ToLongFunction<int[]> positionsOnDevice) {
        this.positionsOnDevice = positionsOnDevice;
        this.context = context;
        this.ledger = ledger;
        this.layers = layers;
        this.width = kvWidth;
        this.keys = new long[layers];
        this.values = new long[layers];
        this.devicePositions = new long[layers];
        this.positions = new KvPositions(layers, initialCapacity);
        this.capacities = new int[layers];
        int capacity = positions.capacity(0);
        for (int l = 0; l < layers; l++) {
            keys[l] = context.allocate(rowBytes(capacity));
            values[l] = context.allocate(rowBytes(capacity));
            devicePositions[l] = context.allocate((long) capacity * Integer.BYTES);
            capacities[l] = capacity;
        }
        ledger.opened();
    }

    private long rowBytes(int tokens) {
        return (long) tokens * width * Short.BYTES;
    }

    long keys(int layer) {
        checkOpen();
        return keys[layer];
    }

    long values(int layer) {
        checkOpen();
        return values[layer];
    }

    long devicePositions(int layer) {
        checkOpen();
        return devicePositions[layer];
    }

    @Override
    public int layers() {
        return layers;
    }

    @Override
    public int kvWidth() {
        return width;
    }

    @Override
    public KvPrecision precision() {
        return KvPrecision.BF16;
    }

    @Override
    public int length() {
        return positions.length(layers - 1);
    }

    @Override
    public int length(int layer) {
        return positions.length(layer);
    }

    @Override
    public int[] positions(int layer, int from, int to) {
        checkOpen();
        return positions.copy(layer, from, to);
    }

    @Override
    public void append(int layer, int[] tokenPositions, Tensor k, Tensor v) {
        GpuTensor keyRows = (GpuTensor) k;
        GpuTensor valueRows = (GpuTensor) v;
        int headDim = k.dim(2);
        Tensor.requireShape(k, "k", tokenPositions.length, width / headDim, headDim);
        Tensor.requireShape(v, "v", tokenPositions.length, width / headDim, headDim);
        if (keyRows.dtype != GpuTensor.DType.BF16 || valueRows.dtype != GpuTensor.DType.BF16) {
            throw new IllegalArgumentException("k/v must be BF16 tensors");
        }
        synchronized (context) {
            int start = reserve(layer, tokenPositions);
            NativeGpu.copy(context.handle, devicePositions[layer] + (long) start * Integer.BYTES,
                    positionsOnDevice.applyAsLong(tokenPositions), (long) tokenPositions.length * Integer.BYTES);
            long bytes = rowBytes(tokenPositions.length);
            NativeGpu.copy(context.handle, keys[layer] + rowBytes(start), keyRows.ptr(), bytes);
            NativeGpu.copy(context.handle, values[layer] + rowBytes(start), valueRows.ptr(), bytes);
        }
    }

    @Override
    public void read(int layer, int from, int to, ByteBuffer keyBytes, ByteBuffer valueBytes) {
        checkOpen();
        positions.checkRange(layer, from, to);
        synchronized (context) {
            download(keys[layer] + rowBytes(from), (int) rowBytes(to - from), keyBytes);
            download(values[layer] + rowBytes(from), (int) rowBytes(to - from), valueBytes);
        }
    }

    private void download(long src, int bytes, ByteBuffer target) {
        byte[] host = new byte[bytes];
        NativeGpu.downloadBytes(context.handle, src, host, 0, bytes); // BF16 bits, little-endian like the host
        target.put(host);
    }

    @Override
    public void write(int layer, int[] tokenPositions, KvPrecision from, ByteBuffer keyBytes, ByteBuffer valueBytes) {
        synchronized (context) {
            int start = reserve(layer, tokenPositions);
            NativeGpu.uploadInts(context.handle, devicePositions[layer] + (long) start * Integer.BYTES,
                    tokenPositions, 0, tokenPositions.length);
            int count = tokenPositions.length * width;
            upload(keys[layer] + rowBytes(start), count, from, keyBytes.order(ByteOrder.LITTLE_ENDIAN));
            upload(values[layer] + rowBytes(start), count, from, valueBytes.order(ByteOrder.LITTLE_ENDIAN));
        }
    }

    private void upload(long dst, int count, KvPrecision from, ByteBuffer source) {
        short[] bits = new short[count];
        for (int i = 0; i < count; i++) {
            bits[i] = from == KvPrecision.BF16 ? source.getShort() : Bf16.fromFloat(source.getFloat());
        }
        NativeGpu.uploadShorts(context.handle, dst, bits, 0, count);
    }

    /** Records {@code tokenPositions} on the host, grows the layer's device buffers to match (the caller fills
     *  the device positions), returns the first new token's index. */
    private int reserve(int layer, int[] tokenPositions) {
        checkOpen();
        int start = positions.append(layer, tokenPositions);
        int capacity = positions.capacity(layer);
        if (capacity > capacities[layer]) {
            keys[layer] = grow(keys[layer], rowBytes(capacities[layer]), rowBytes(start), rowBytes(capacity));
            values[layer] = grow(values[layer], rowBytes(capacities[layer]), rowBytes(start), rowBytes(capacity));
            devicePositions[layer] = grow(devicePositions[layer], (long) capacities[layer] * Integer.BYTES,
                    (long) start * Integer.BYTES, (long) capacity * Integer.BYTES);
            capacities[layer] = capacity;
        }
        return start;
    }

    private long grow(long old, long oldBytes, long usedBytes, long newBytes) {
        long fresh = context.allocate(newBytes);
        if (usedBytes > 0) {
            NativeGpu.copy(context.handle, fresh, old, usedBytes);
        }
        context.release(old, oldBytes);
        return fresh;
    }

    @Override
    public long bytes() {
        long total = 0;
        for (int l = 0; l < layers; l++) {
            total += 2 * rowBytes(positions.length(l));
        }
        return total;
    }

    @Override
    public boolean isOpen() {
        return open;
    }

    @Override
    public void close() {
        if (!open) {
            return;
        }
        open = false;
        for (int l = 0; l < layers; l++) {
            context.release(keys[l], rowBytes(capacities[l]));
            context.release(values[l], rowBytes(capacities[l]));
            context.release(devicePositions[l], (long) capacities[l] * Integer.BYTES);
        }
        ledger.closed();
    }

    private void checkOpen() {
        if (!open) {
            throw new IllegalStateException("KV cache used after it was closed");
        }
    }
}
