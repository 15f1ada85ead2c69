package org.starflink.engine.forward;

import java.util.Arrays;

/**
 * The keys and values of a run of tokens, for every layer: append-only, growing by doubling. Layers are appended
 * one after another during a forward pass, so each keeps its own length; between passes all lengths are equal.
 * Not thread-safe: one owner (a block worker or a query host) appends to it.
 */
public final class KvCache {
    private final int layers;
    private final int width;
    private final int[][] positions;
    private final float[][] keys;
    private final float[][] values;
    private final int[] lengths;

    /**
     * @param layers  number of decoder layers
     * @param kvWidth Hkv * headDim, the width of one token's keys (and values) per layer
     */
    public KvCache(int layers, int kvWidth, int initialCapacity) {
        this.layers = layers;
        this.width = kvWidth;
        int capacity = Math.max(1, initialCapacity);
        this.positions = new int[layers][capacity];
        this.keys = new float[layers][capacity * kvWidth];
        this.values = new float[layers][capacity * kvWidth];
        this.lengths = new int[layers];
    }

    public int layers() {
        return layers;
    }

    public int kvWidth() {
        return width;
    }

    /** Number of tokens held (of the last layer, which is complete between forward passes). */
    public int length() {
        return lengths[layers - 1];
    }

    /** Appends T tokens to one layer: k and v are [T, Hkv, headDim]. */
    public void append(int layer, int[] tokenPositions, float[] k, float[] v) {
        int count = tokenPositions.length;
        int needed = lengths[layer] + count;
        if (needed > positions[layer].length) {
            int capacity = Math.max(needed, positions[layer].length * 2);
            positions[layer] = Arrays.copyOf(positions[layer], capacity);
            keys[layer] = Arrays.copyOf(keys[layer], capacity * width);
            values[layer] = Arrays.copyOf(values[layer], capacity * width);
        }
        System.arraycopy(tokenPositions, 0, positions[layer], lengths[layer], count);
        System.arraycopy(k, 0, keys[layer], lengths[layer] * width, count * width);
        System.arraycopy(v, 0, values[layer], lengths[layer] * width, count * width);
        lengths[layer] = needed;
    }

    /** A view of one layer's entries; valid until the next append to that layer. */
    public KvSpan span(int layer) {
        return new KvSpan(positions[layer], keys[layer], values[layer], lengths[layer]);
    }

    /** A new cache holding tokens [from, to) of this one, every layer. */
    public KvCache copyRange(int from, int to) {
        KvCache copy = new KvCache(layers, width, to - from);
        for (int l = 0; l < layers; l++) {
            copy.append(l, Arrays.copyOfRange(positions[l], from, to),
                    Arrays.copyOfRange(keys[l], from * width, to * width),
                    Arrays.copyOfRange(values[l], from * width, to * width));
        }
        return copy;
    }

    /** Bytes of K and V held, for metrics. */
    public long bytes() {
        long total = 0;
        for (int l = 0; l < layers; l++) {
            total += 2L * lengths[l] * width * Float.BYTES;
        }
        return total;
    }
}
