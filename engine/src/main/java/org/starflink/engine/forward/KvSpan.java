package org.starflink.engine.forward;

/**
 * A read-only view of the first {@code length} entries of one layer's KV: what {@link
 * org.starflink.engine.backend.Backend#attend} consumes. The arrays may be longer than the view.
 *
 * @param positions [length] position id of each key
 * @param keys      [length, Hkv, headDim], RoPE applied
 * @param values    [length, Hkv, headDim]
 */
public record KvSpan(int[] positions, float[] keys, float[] values, int length) {
}
