package org.starflink.operators.messages;

import org.starflink.schemas.Coverage;

/**
 * A question that the document operator accepted, with the part of the document's catalog it sees (the blocks of
 * the chunks up to the question's Kafka timestamp, {@code LogPrefixAdmission}): the question is answered over
 * exactly those blocks ({@link #blockCount} blocks, {@link #contextLength} tokens), on the version it saw. Enters the per-layer loop keyed by {@link #questionId}.
 */
public class QuestionTask {
    public String questionId;
    public String docId;
    public long version;
    public String text;
    /** The question's tokens (no BOS), tokenized once by the document operator. */
    public int[] tokens;
    public int maxNewTokens;
    public float temperature;
    public float topP;
    public long seed;
    public String[] stop;
    /** N: the question's first token sits at position N. */
    public int contextLength;
    /** Blocks 0..blockCount-1 of (docId, version) answer every layer request. */
    public int blockCount;
    /** Those blocks are the whole document: its last chunk had arrived. */
    public boolean documentComplete;
    /** Epoch millis when the question entered the job (for time-to-first-token). */
    public long receivedMs;

    public QuestionTask() {
    }

    /** What an answer to this task covers, as every answer record reports it. */
    public Coverage coverage() {
        return new Coverage(version, blockCount, contextLength, documentComplete);
    }
}
