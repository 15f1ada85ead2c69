package org.starflink.operators.messages;

/**
 * A question that the document operator accepted, with the document's catalog at the moment it arrived: the
 * question is answered over exactly the blocks that existed then ({@link #blockCount} blocks, {@link
 * #contextLength} tokens), on the version it saw. Enters the per-layer loop keyed by {@link #questionId}.
 */
public class QuestionTask {
    public String questionId;
    public String docId;
    public long version;
    public String text;
    public int maxNewTokens;
    public float temperature;
    public float topP;
    public long seed;
    public String[] stop;
    /** N: the question's first token sits at position N. */
    public int contextLength;
    /** Blocks 0..blockCount-1 of (docId, version) answer every layer request. */
    public int blockCount;
    /** Epoch millis when the question entered the job (for time-to-first-token). */
    public long receivedMs;

    public QuestionTask() {
    }
}
