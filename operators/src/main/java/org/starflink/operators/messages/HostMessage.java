package org.starflink.operators.messages;

/**
 * What reaches the query host (keyed by {@link #questionId}) through the per-layer loop: either a new question
 * ({@link #task} set) or one block's partial attention for one layer ({@link #partial} set).
 */
public class HostMessage {
    public String questionId;
    /** A new question entering the loop, or null. */
    public QuestionTask task;
    public int block;
    public int pass;
    public int layer;
    /** The engine's binary AttentionPartial, or null. */
    public byte[] partial;

    public HostMessage() {
    }

    public static HostMessage question(QuestionTask task) {
        HostMessage m = new HostMessage();
        m.questionId = task.questionId;
        m.task = task;
        return m;
    }

    public static HostMessage partial(String questionId, int block, int pass, int layer, byte[] partial) {
        HostMessage m = new HostMessage();
        m.questionId = questionId;
        m.block = block;
        m.pass = pass;
        m.layer = layer;
        m.partial = partial;
        return m;
    }

    public boolean isQuestion() {
        return task != null;
    }
}
