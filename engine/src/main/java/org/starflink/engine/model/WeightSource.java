package org.starflink.engine.model;

import org.starflink.engine.numeric.Bf16;

/**
 * Where a backend reads the weights from when it is created: one tensor at a time, from the checkpoint's
 * memory-mapped files, so that no backend needs a float32 copy of the whole model on the heap. Each backend
 * converts each tensor into the form it computes with (heap float32 for the reference, native tensors for DJL,
 * BF16 device memory for a GPU) and drops the host copy.
 *
 * <p>Biases exist only when {@link ModelConfig#qkvBias()}; the output head is the token embedding when
 * {@link ModelConfig#tiedEmbeddings()}. Thread-safe.
 */
public interface WeightSource {

    /** One tensor, row-major, widened to float32 (a new array, or one the caller must not modify). */
    float[] read(WeightName name);

    /** One tensor as BF16 bits: exact for BF16 checkpoints, rounded to nearest even otherwise. */
    default short[] readBf16(WeightName name) {
        float[] values = read(name);
        short[] bits = new short[values.length];
        for (int i = 0; i < values.length; i++) {
            bits[i] = Bf16.fromFloat(values[i]);
        }
        return bits;
    }
}
