package org.starflink.engine.model;

import org.starflink.engine.tokenizer.Tokenizer;

/**
 * A loaded checkpoint: its configuration, where its weights are read from, and its tokenizer. The weights stay
 * in the checkpoint's memory-mapped files until a backend reads them in its own form. Immutable and shared by
 * every caller in the JVM (see {@link org.starflink.engine.checkpoint.ModelRegistry}).
 *
 * @param source where it was loaded from, for messages
 */
public record Model(String source, ModelConfig config, WeightSource weights, Tokenizer tokenizer) {
}
