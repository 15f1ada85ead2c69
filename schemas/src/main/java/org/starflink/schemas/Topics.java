package org.starflink.schemas;

/** The Kafka topics of the wire types, their keys and value types (see docs/schemas.md). */
public final class Topics {

    /** Key doc_id, value {@link DocumentEvent}. */
    public static final String DOCUMENTS = "documents";
    /** Key question_id, value {@link Question}. */
    public static final String QUESTIONS = "questions";
    /** Key question_id, value {@link AnswerToken}, one per generated token, in order. */
    public static final String ANSWERS = "answers";
    /** Key "topic/partition" of the source record, value {@link RejectedRecord}. */
    public static final String REJECTED = "rejected";
    /** Key block_key, value {@link BlockEvent}: what happened to each context block (encoded, skipped, retired). */
    public static final String BLOCK_EVENTS = "block-events";

    private Topics() {}
}
