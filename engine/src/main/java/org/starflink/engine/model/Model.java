package org.starflink.engine.model;

import org.starflink.engine.tokenizer.Tokenizer;

/**
 * A loaded checkpoint: its configuration, weights and tokenizer. Immutable and shared by every caller in the
 * JVM (see {@link org.starflink.engine.checkpoint.ModelRegistry}).
 *
 * @param source where it was loaded from, for messages
 */
public record Model(String source, ModelConfig config, ModelWeights weights, Tokenizer tokenizer) {
}
