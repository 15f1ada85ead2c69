package org.starflink.engine.generate;

/**
 * @param tokens the generated ids, EOS included when produced
 * @param text   their text (cut before a stop string when one ended generation)
 */
public record GenerationResult(int[] tokens, String text, FinishReason finishReason, Timings timings) {
}
