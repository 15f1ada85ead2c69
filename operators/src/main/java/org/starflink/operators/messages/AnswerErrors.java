package org.starflink.operators.messages;

import org.starflink.schemas.AnswerToken;
import org.starflink.schemas.FinishReason;

/** The final answer record of a question that cannot be answered, so that the asker is never left waiting. */
public final class AnswerErrors {
    private AnswerErrors() {
    }

    public static AnswerToken error(String questionId, String docId, String reason, long receivedMs) {
        long now = System.currentTimeMillis();
        return AnswerToken.newBuilder()
                .setQuestionId(questionId == null ? "" : questionId)
                .setDocId(docId == null ? "" : docId)
                .setIndex(0)
                .setTokenId(-1)
                .setText("")
                .setFinal$(true)
                .setFinishReason(FinishReason.ERROR)
                .setError(reason)
                .setQuestionReceivedMs(receivedMs)
                .setEmittedMs(now)
                .setPrefillMs(0)
                .build();
    }
}
