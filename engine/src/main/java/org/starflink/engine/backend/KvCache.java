package org.starflink.engine.backend;

import java.nio.ByteBuffer;

/**
 * The keys and values of a run of tokens for every layer, owned by the backend that made it
 * ({@link Backend#newKvCache}): on the device for a GPU backend, in memory for the CPU backends, stored in the
 * backend's {@link KvPrecision}. Append-only. Layers are appended one after another during a forward pass, so
 * each keeps its own length; between passes all lengths are equal.
 *
 * <p>Host bytes cross only here, as pages for keyed state: {@link #read} and {@link #write} move rows in a
 * given precision, little-endian, [count, Hkv, headDim] keys then values. Not thread-safe: one owner (a block,
 * a query host, a session) appends to it. Close it to free its memory.
 */
public interface KvCache extends AutoCloseable {

    int layers();

    /** Hkv * headDim: the width of one token's keys (and values) per layer. */
    int kvWidth();

    KvPrecision precision();

    /** Tokens held by the last layer (complete between forward passes). */
    int length();

    /** Tokens held by one layer. */
    int length(int layer);

    /** Position ids of tokens [from, to) of one layer. */
    int[] positions(int layer, int from, int to);

    /** Appends T tokens to one layer; k and v are [T, Hkv, headDim] tensors of the owning backend. */
    void append(int layer, int[] positions, Tensor k, Tensor v);

    /**
     * Copies tokens [from, to) of one layer into {@code keys} and {@code values} (little-endian, in this cache's
     * precision, (to - from) * kvWidth elements each).
     */
    void read(int layer, int from, int to, ByteBuffer keys, ByteBuffer values);

    /**
     * Appends tokens to one layer from host bytes (little-endian, in {@code precision}; converted when it
     * differs from this cache's: F32 rows are rounded into a BF16 cache, BF16 rows widened exactly into F32).
     */
    void write(int layer, int[] positions, KvPrecision precision, ByteBuffer keys, ByteBuffer values);

    /** Bytes of K and V held, for metrics and cache budgets (including what {@link #seal} added). */
    long bytes();

    /**
     * Declares that nothing will be appended or written to this cache again (a context block's KV, read by every
     * layer request of every question): the backend may keep it in a form that is faster to read repeatedly, which
     * {@link #bytes()} then counts. Reading gives the same numbers either way. Afterwards {@link #append} and
     * {@link #write} are an IllegalStateException. This default keeps the cache as it is.
     */
    default void seal() {
    }

    boolean isOpen();

    /** Frees the cache's memory; idempotent. */
    @Override
    void close();
}
