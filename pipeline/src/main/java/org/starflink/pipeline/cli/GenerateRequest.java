package org.starflink.pipeline.cli;

import org.starflink.engine.generate.SamplingParams;
import org.starflink.engine.star.AttentionMode;

/**
 * One thing to generate: either a plain prompt, or a question over a context in a mode.
 *
 * @param id         the caller's id (batch), or null
 * @param blockSize  Star block size, null for the default (N / 4)
 * @param anchorSize Star anchor size, null for the default (= block size)
 */
record GenerateRequest(String id, String prompt, String context, String question, AttentionMode mode,
                       Integer blockSize, Integer anchorSize, SamplingParams params) {
}
