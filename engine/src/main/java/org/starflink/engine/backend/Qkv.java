package org.starflink.engine.backend;

/**
 * The attention inputs of T rows at one layer, RoPE already applied to q and k.
 *
 * @param q [T, H, headDim]
 * @param k [T, Hkv, headDim]
 * @param v [T, Hkv, headDim]
 */
public record Qkv(Tensor q, Tensor k, Tensor v) {
}
