package org.starflink.engine.backend;

import java.util.Arrays;

/**
 * The host-side bookkeeping every {@link KvCache} needs, whatever memory holds its keys and values: per layer, the
 * position ids of the tokens held and how many there are, append-only, growing by doubling. A cache keeps its
 * own storage at least {@link #capacity} tokens long.
 */
public final class KvPositions {
    private final int[][] positions;
    private final int[] lengths;
    /** Per layer, the largest position id held (Integer.MIN_VALUE while empty): kept, not scanned for per call. */
    private final int[] latest;

    public KvPositions(int layers, int initialCapacity) {
        int capacity = Math.max(1, initialCapacity);
        this.positions = new int[layers][capacity];
        this.lengths = new int[layers];
        this.latest = new int[layers];
        Arrays.fill(latest, Integer.MIN_VALUE);
    }

    public int layers() {
        return lengths.length;
    }

    public int length(int layer) {
        return lengths[layer];
    }

    /** The largest position id one layer holds; {@link Integer#MIN_VALUE} while it holds none. */
    public int latest(int layer) {
        return latest[layer];
    }

    /** Tokens one layer's storage must have room for. */
    public int capacity(int layer) {
        return positions[layer].length;
    }

    /** Position ids of tokens [from, to) of one layer (a copy). */
    public int[] copy(int layer, int from, int to) {
        checkRange(layer, from, to);
        return Arrays.copyOfRange(positions[layer], from, to);
    }

    /** Position ids of one layer; the array may be longer than {@link #length} (no copy: callers only read). */
    int[] view(int layer) {
        return positions[layer];
    }

    /** Records {@code tokenPositions} after one layer's tokens and returns the index of the first of them. */
    public int append(int layer, int[] tokenPositions) {
        int start = lengths[layer];
        int needed = start + tokenPositions.length;
        if (needed > positions[layer].length) {
            positions[layer] = Arrays.copyOf(positions[layer], Math.max(needed, positions[layer].length * 2));
        }
        System.arraycopy(tokenPositions, 0, positions[layer], start, tokenPositions.length);
        for (int position : tokenPositions) {
            latest[layer] = Math.max(latest[layer], position);
        }
        lengths[layer] = needed;
        return start;
    }

    /** Throws unless [from, to) lies within the tokens one layer holds. */
    public void checkRange(int layer, int from, int to) {
        if (from < 0 || to > lengths[layer] || from > to) {
            throw new IndexOutOfBoundsException("tokens [" + from + ", " + to + ") of a layer holding "
                    + lengths[layer]);
        }
    }
}
