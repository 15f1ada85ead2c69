package org.starflink.engine.model;

/** Which pairs of a head's dimensions RoPE rotates together. */
public enum RopeStyle {
    /** (x[2i], x[2i+1]): llama2.c and Meta's original Llama code. */
    INTERLEAVED,
    /** (x[i], x[i + d/2]): Hugging Face transformers' rotate_half. */
    HALVES
}
