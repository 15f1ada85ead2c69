package org.starflink.operators.kafka;

import java.io.Serializable;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import org.starflink.schemas.DocumentChunk;
import org.starflink.schemas.DocumentEvent;
import org.starflink.schemas.Question;

/**
 * What a decoded record must satisfy beyond its schema, checked right after decoding so that a violation goes
 * to the rejected topic with the record's origin (docs/schemas.md): documents are keyed by their doc_id (all
 * events of one document in one partition, in order), questions by their question_id (the answers are keyed by
 * it), ids are not empty, chunk seqs are not negative.
 */
public final class WireContract {
    private WireContract() {
    }

    /** Why a decoded record breaks the contract of its topic; null when it keeps it. */
    @FunctionalInterface
    public interface Check<T> extends Serializable {
        String problem(byte[] key, T value);
    }

    /** The check for records of {@code type}; types without a contract pass. */
    @SuppressWarnings("unchecked")
    public static <T> Check<T> of(Class<T> type) {
        if (type == DocumentEvent.class) {
            return (Check<T>) (Check<DocumentEvent>) WireContract::documentProblem;
        }
        if (type == Question.class) {
            return (Check<T>) (Check<Question>) WireContract::questionProblem;
        }
        return (key, value) -> null;
    }

    static String documentProblem(byte[] key, DocumentEvent event) {
        if (event.getDocId().isEmpty()) {
            return "empty doc_id";
        }
        String keyProblem = keyProblem(key, event.getDocId(), "doc_id");
        if (keyProblem != null) {
            return keyProblem;
        }
        if (event.getBody() instanceof DocumentChunk chunk && chunk.getSeq() < 0) {
            return "chunk seq must be >= 0, got " + chunk.getSeq() + " (document " + event.getDocId() + ")";
        }
        return null;
    }

    static String questionProblem(byte[] key, Question question) {
        if (question.getQuestionId().isEmpty()) {
            return "empty question_id (document " + question.getDocId() + ")";
        }
        return keyProblem(key, question.getQuestionId(), "question_id");
    }

    private static String keyProblem(byte[] key, String id, String field) {
        if (key == null || !Arrays.equals(key, id.getBytes(StandardCharsets.UTF_8))) {
            return "Kafka key " + (key == null ? "null" : "'" + new String(key, StandardCharsets.UTF_8) + "'")
                    + " differs from " + field + " '" + id + "': records are keyed by their " + field;
        }
        return null;
    }
}
