package org.starflink.engine.backend;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.function.Function;
import org.starflink.engine.numeric.Bf16;

/**
 * The CPU backends' KV cache: per layer, keys and values [capacity, Hkv, headDim] in Java arrays (short[] BF16
 * bits or float[]), growing by doubling, with the position id of every token. The attention loops read one KV
 * head's keys and values at a time, widened into float32 scratch arrays ({@link #keyHead}, {@link #valueHead}).
 * A {@link #seal sealed} cache keeps those float32 forms of the stacked loop nest ({@link #keyHeadTransposed},
 * {@link #valueHeadRows}) next to its rows, so that repeated reads of an immutable block do not widen again: three
 * times the bytes of a BF16 cache (twice those of an F32 one), the same numbers.
 */
public final class HostKvCache implements KvCache {
    private final int layers;
    private final int width;
    private final int headDim;
    private final KvPrecision precision;
    private final HandleLedger ledger;
    /** The owning backend's way to see a k/v tensor as host floats. */
    private final Function<Tensor, float[]> hostValues;
    private final KvPositions positions;
    private final Rows[] keys;
    private final Rows[] values;
    /** After {@link #seal}: per layer and KV head, keys transposed [hd][S] and values as rows [S][hd], float32. */
    private float[][][][] sealedKeysT;
    private float[][][][] sealedValueRows;
    private boolean open = true;

    public HostKvCache(int layers, int kvWidth, int headDim, KvPrecision precision, int initialCapacity,
                       HandleLedger ledger, Function<Tensor, float[]> hostValues) {
        this.layers = layers;
        this.width = kvWidth;
        this.headDim = headDim;
        this.precision = precision;
        this.ledger = ledger;
        this.hostValues = hostValues;
        this.positions = new KvPositions(layers, initialCapacity);
        int capacity = positions.capacity(0);
        this.keys = new Rows[layers];
        this.values = new Rows[layers];
        for (int l = 0; l < layers; l++) {
            keys[l] = Rows.of(precision, capacity * kvWidth);
            values[l] = Rows.of(precision, capacity * kvWidth);
        }
        ledger.opened();
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
        return precision;
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

    /** The largest position id one layer holds ({@link KvPositions#latest}). */
    int latestPosition(int layer) {
        checkOpen();
        return positions.latest(layer);
    }

    /** Position ids of one layer; the array may be longer than {@link #length(int)} (backends only, no copy). */
    int[] positionsView(int layer) {
        checkOpen();
        return positions.view(layer);
    }

    @Override
    public void append(int layer, int[] tokenPositions, Tensor k, Tensor v) {
        Tensor.requireShape(k, "k", tokenPositions.length, width / headDim, headDim);
        Tensor.requireShape(v, "v", tokenPositions.length, width / headDim, headDim);
        float[] kValues = hostValues.apply(k);
        float[] vValues = hostValues.apply(v);
        int count = tokenPositions.length;
        int start = reserve(layer, tokenPositions);
        keys[layer].put(start * width, kValues, 0, count * width);
        values[layer].put(start * width, vValues, 0, count * width);
    }

    @Override
    public void read(int layer, int from, int to, ByteBuffer keyBytes, ByteBuffer valueBytes) {
        checkOpen();
        positions.checkRange(layer, from, to);
        keys[layer].read(from * width, (to - from) * width, keyBytes.order(ByteOrder.LITTLE_ENDIAN));
        values[layer].read(from * width, (to - from) * width, valueBytes.order(ByteOrder.LITTLE_ENDIAN));
    }

    @Override
    public void write(int layer, int[] tokenPositions, KvPrecision from, ByteBuffer keyBytes, ByteBuffer valueBytes) {
        int count = tokenPositions.length;
        int start = reserve(layer, tokenPositions);
        keys[layer].write(start * width, count * width, from, keyBytes.order(ByteOrder.LITTLE_ENDIAN));
        values[layer].write(start * width, count * width, from, valueBytes.order(ByteOrder.LITTLE_ENDIAN));
    }

    /** Records {@code tokenPositions} in one layer, grows its rows to match, returns the first new token's index. */
    private int reserve(int layer, int[] tokenPositions) {
        checkOpen();
        if (sealedKeysT != null) {
            throw new IllegalStateException("KV cache appended to after it was sealed");
        }
        int start = positions.append(layer, tokenPositions);
        int capacity = positions.capacity(layer) * width;
        if (capacity > keys[layer].capacity()) {
            keys[layer] = keys[layer].grow(capacity);
            values[layer] = values[layer].grow(capacity);
        }
        return start;
    }

    /**
     * Keys of KV head {@code kvHead} of one layer, every token, widened into {@code target} [length, headDim]
     * (contiguous): the attention loops widen a head's keys once per call and then read them like float32 arrays.
     * One bulk loop instead of a call per 8- to 128-wide row (for stories260K's 8-wide rows that per-row call
     * cost more than the widening itself).
     */
    void keyHead(int layer, int kvHead, float[] target) {
        keys[layer].widenColumns(kvHead * headDim, width, headDim, positions.length(layer), target);
    }

    /** Values of KV head {@code kvHead} of one layer, every token, widened into {@code target} [length, headDim]. */
    void valueHead(int layer, int kvHead, float[] target) {
        values[layer].widenColumns(kvHead * headDim, width, headDim, positions.length(layer), target);
    }

    /**
     * Keys of KV head {@code kvHead} of one layer widened and transposed: {@code target[i][s]} = element i of token
     * s's key, for every token (rows at least {@link #length(int)} long): the layout in which a score per key is a
     * contiguous run of products ({@link StackedAttention}). Returns {@code scratch} filled, or, once sealed, the
     * cache's own copy (exactly {@link #length(int)} long; read only).
     */
    float[][] keyHeadTransposed(int layer, int kvHead, float[][] scratch) {
        if (sealedKeysT != null) {
            return sealedKeysT[layer][kvHead];
        }
        keys[layer].widenTransposed(kvHead * headDim, width, headDim, positions.length(layer), scratch);
        return scratch;
    }

    /**
     * Values of KV head {@code kvHead} of one layer widened, one array per token: {@code [s][i]}, in {@code scratch}
     * or, once sealed, the cache's own copy (read only).
     */
    float[][] valueHeadRows(int layer, int kvHead, float[][] scratch) {
        if (sealedValueRows != null) {
            return sealedValueRows[layer][kvHead];
        }
        values[layer].widenRows(kvHead * headDim, width, headDim, positions.length(layer), scratch);
        return scratch;
    }

    @Override
    public void seal() {
        checkOpen();
        if (sealedKeysT != null) {
            return;
        }
        int kvHeads = width / headDim;
        float[][][][] keysT = new float[layers][kvHeads][][];
        float[][][][] valueRows = new float[layers][kvHeads][][];
        for (int l = 0; l < layers; l++) {
            int length = positions.length(l);
            for (int h = 0; h < kvHeads; h++) {
                keysT[l][h] = new float[headDim][length];
                keys[l].widenTransposed(h * headDim, width, headDim, length, keysT[l][h]);
                valueRows[l][h] = new float[length][headDim];
                values[l].widenRows(h * headDim, width, headDim, length, valueRows[l][h]);
            }
        }
        sealedKeysT = keysT;
        sealedValueRows = valueRows;
    }

    /** Every key of one layer as float32 [length, Hkv, headDim] (a new array). */
    public float[] keysF32(int layer) {
        float[] out = new float[positions.length(layer) * width];
        keys[layer].widen(0, out.length, out, 0);
        return out;
    }

    /** Every value of one layer as float32 [length, Hkv, headDim] (a new array). */
    public float[] valuesF32(int layer) {
        float[] out = new float[positions.length(layer) * width];
        values[layer].widen(0, out.length, out, 0);
        return out;
    }

    @Override
    public long bytes() {
        long total = 0;
        for (int l = 0; l < layers; l++) {
            total += 2L * positions.length(l) * width * precision.bytes;
        }
        if (sealedKeysT != null) {
            for (int l = 0; l < layers; l++) {
                total += 2L * positions.length(l) * width * Float.BYTES;
            }
        }
        return total;
    }

    @Override
    public boolean isOpen() {
        return open;
    }

    @Override
    public void close() {
        if (open) {
            open = false;
            for (int l = 0; l < layers; l++) {
                keys[l] = null;
                values[l] = null;
            }
            sealedKeysT = null;
            sealedValueRows = null;
            ledger.closed();
        }
    }

    private void checkOpen() {
        if (!open) {
            throw new IllegalStateException("KV cache used after it was closed");
        }
    }

    /** The elements of one layer's keys or values in one precision. */
    private abstract static sealed class Rows permits F32Rows, Bf16Rows {
        static Rows of(KvPrecision precision, int capacity) {
            return precision == KvPrecision.BF16 ? new Bf16Rows(new short[capacity]) : new F32Rows(new float[capacity]);
        }

        abstract Rows grow(int capacity);

        abstract int capacity();

        abstract void put(int at, float[] source, int offset, int count);

        abstract void widen(int at, int count, float[] target, int offset);

        /** Elements [at + r * stride, + count) of rows r < rows, widened into target[r * count, + count). */
        abstract void widenColumns(int at, int stride, int count, int rows, float[] target);

        /** The same elements, row r into target[r][0, count). */
        abstract void widenRows(int at, int stride, int count, int rows, float[][] target);

        /** The same elements transposed: element i of row r into target[i][r]. */
        abstract void widenTransposed(int at, int stride, int count, int rows, float[][] target);

        abstract void read(int at, int count, ByteBuffer target);

        abstract void write(int at, int count, KvPrecision from, ByteBuffer source);
    }

    private static final class F32Rows extends Rows {
        private final float[] data;

        F32Rows(float[] data) {
            this.data = data;
        }

        @Override
        Rows grow(int capacity) {
            return new F32Rows(Arrays.copyOf(data, capacity));
        }

        @Override
        int capacity() {
            return data.length;
        }

        @Override
        void put(int at, float[] source, int offset, int count) {
            System.arraycopy(source, offset, data, at, count);
        }

        @Override
        void widen(int at, int count, float[] target, int offset) {
            System.arraycopy(data, at, target, offset, count);
        }

        @Override
        void widenColumns(int at, int stride, int count, int rows, float[] target) {
            for (int r = 0; r < rows; r++) {
                System.arraycopy(data, at + r * stride, target, r * count, count);
            }
        }

        @Override
        void widenRows(int at, int stride, int count, int rows, float[][] target) {
            for (int r = 0; r < rows; r++) {
                System.arraycopy(data, at + r * stride, target[r], 0, count);
            }
        }

        @Override
        void widenTransposed(int at, int stride, int count, int rows, float[][] target) {
            for (int r = 0; r < rows; r++) {
                int from = at + r * stride;
                for (int i = 0; i < count; i++) {
                    target[i][r] = data[from + i];
                }
            }
        }

        @Override
        void read(int at, int count, ByteBuffer target) {
            target.asFloatBuffer().put(data, at, count);
            target.position(target.position() + count * Float.BYTES);
        }

        @Override
        void write(int at, int count, KvPrecision from, ByteBuffer source) {
            if (from == KvPrecision.F32) {
                source.asFloatBuffer().get(data, at, count);
                source.position(source.position() + count * Float.BYTES);
            } else {
                for (int i = 0; i < count; i++) {
                    data[at + i] = Bf16.toFloat(source.getShort());
                }
            }
        }
    }

    private static final class Bf16Rows extends Rows {
        private final short[] data;

        Bf16Rows(short[] data) {
            this.data = data;
        }

        @Override
        Rows grow(int capacity) {
            return new Bf16Rows(Arrays.copyOf(data, capacity));
        }

        @Override
        int capacity() {
            return data.length;
        }

        @Override
        void put(int at, float[] source, int offset, int count) {
            for (int i = 0; i < count; i++) {
                data[at + i] = Bf16.fromFloat(source[offset + i]);
            }
        }

        @Override
        void widen(int at, int count, float[] target, int offset) {
            for (int i = 0; i < count; i++) {
                target[offset + i] = Bf16.toFloat(data[at + i]);
            }
        }

        @Override
        void widenColumns(int at, int stride, int count, int rows, float[] target) {
            for (int r = 0; r < rows; r++) {
                int from = at + r * stride;
                int to = r * count;
                for (int i = 0; i < count; i++) {
                    target[to + i] = Float.intBitsToFloat((data[from + i] & 0xffff) << 16); // Bf16.toFloat
                }
            }
        }

        @Override
        void widenRows(int at, int stride, int count, int rows, float[][] target) {
            for (int r = 0; r < rows; r++) {
                int from = at + r * stride;
                float[] row = target[r];
                for (int i = 0; i < count; i++) {
                    row[i] = Float.intBitsToFloat((data[from + i] & 0xffff) << 16); // Bf16.toFloat
                }
            }
        }

        @Override
        void widenTransposed(int at, int stride, int count, int rows, float[][] target) {
            for (int r = 0; r < rows; r++) {
                int from = at + r * stride;
                for (int i = 0; i < count; i++) {
                    target[i][r] = Float.intBitsToFloat((data[from + i] & 0xffff) << 16); // Bf16.toFloat
                }
            }
        }

        @Override
        void read(int at, int count, ByteBuffer target) {
            target.asShortBuffer().put(data, at, count);
            target.position(target.position() + count * Short.BYTES);
        }

        @Override
        void write(int at, int count, KvPrecision from, ByteBuffer source) {
            if (from == KvPrecision.BF16) {
                source.asShortBuffer().get(data, at, count);
                source.position(source.position() + count * Short.BYTES);
            } else {
                for (int i = 0; i < count; i++) {
                    data[at + i] = Bf16.fromFloat(source.getFloat());
                }
            }
        }
    }
}
