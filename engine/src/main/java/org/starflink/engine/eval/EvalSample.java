package org.starflink.engine.eval;

/**
 * One accuracy probe: a context, a question about it and the expected answer, in the context / question / answer
 * split of the Star Attention contract.
 *
 * @param task   task kind (single needle, multi-key, ...)
 * @param length the target context length in tokens
 */
public record EvalSample(String task, int length, String context, String question, String answer) {
}
