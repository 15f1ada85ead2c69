package org.starflink.engine.backend;

/**
 * An attention partial inside a backend: the attention of T query rows over one set of keys, normalized within
 * it, and the log-sum-exp that normalized it. {@link org.starflink.engine.attention.AttentionPartial} is the same
 * on the host (the wire form).
 *
 * @param output [T, H, headDim] float32; zero for a row with no visible key
 * @param lse    [T, H] float32, natural log; -inf for a row with no visible key
 */
public record Partial(Tensor output, Tensor lse) {
}
