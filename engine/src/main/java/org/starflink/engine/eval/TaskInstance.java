package org.starflink.engine.eval;

import java.util.List;

/**
 * One task instance in the Star Attention split. The model sees [BOS] + tokenize(context) as the context and
 * tokenize(question) (no BOS) as the query; the expected output is {@code answer} (canonical form, no leading
 * space), then EOS.
 *
 * @param kind        the task kind
 * @param context     the context text (instruction line + haystack)
 * @param question    the question text; it starts with a newline and ends with the answer prefix
 * @param answer      the expected answer in canonical form
 * @param extraQa     further question/answer pairs about the same context (training only; empty for eval)
 * @param seed        the seed that produced it
 * @param targetLength the bound on 1 + tokens(context) + tokens(question)
 */
public record TaskInstance(
        TaskKind kind,
        String context,
        String question,
        String answer,
        List<QuestionAnswer> extraQa,
        long seed,
        int targetLength) {

    public TaskInstance {
        extraQa = List.copyOf(extraQa);
    }

    /** A question and its canonical answer. */
    public record QuestionAnswer(String question, String answer) {
    }
}
