package org.starflink.operators.document;

import org.starflink.engine.generate.SamplingParams;
import org.starflink.schemas.Question;

/**
 * The checks a question must pass on its own, before its document is looked at: what {@link SamplingParams}
 * would refuse downstream, caught here so the asker gets an error answer instead of a failed job.
 */
final class QuestionChecks {
    private QuestionChecks() {
    }

    /** Why the question cannot be answered whatever the document; null when it is well-formed. */
    static String problem(Question question) {
        if (question.getText() == null || question.getText().isBlank()) {
            return "the question text is empty";
        }
        int maxNewTokens = question.getMaxNewTokens();
        if (maxNewTokens <= 0 || maxNewTokens > SamplingParams.MAX_NEW_TOKENS_LIMIT) {
            return "max_new_tokens must be in 1.." + SamplingParams.MAX_NEW_TOKENS_LIMIT + ", got " + maxNewTokens;
        }
        float temperature = question.getTemperature();
        if (!(temperature >= 0) || Float.isInfinite(temperature)) {
            return "temperature must be a finite number >= 0, got " + temperature;
        }
        float topP = question.getTopP();
        if (!(topP > 0 && topP <= 1)) {
            return "top_p must be in (0, 1], got " + topP;
        }
        if (question.getStop() != null && question.getStop().stream().anyMatch(s -> s == null || s.isEmpty())) {
            return "stop strings must not be empty";
        }
        return null;
    }
}
