package org.starflink.operators.messages;

/**
 * What reaches the query host (keyed by {@link #hostKey}, one document version) through the per-layer loop: either
 * a new question ({@link #task} set) or one block's partials for one layer of the host's batch ({@link #partials}
 * set: the engine's binary partial batch, one partial per question of the request, in the request's order), or a
 * block's word that it can no longer answer ({@link #blockGone} set).
 */
public class HostMessage {
    /** {@link BlockKeys#documentVersion}: the loop's key. */
    public String hostKey;
    /** A new question entering the loop, or null. */
    public QuestionTask task;
    public int block;
    /** The host's pass the partials answer (tells stale replies apart). */
    public long pass;
    public int layer;
    /** The engine's binary batch of AttentionPartials, or null. */
    public byte[] partials;
    /** Why the block cannot answer (its KV expired or was retired), or null. */
    public String blockGone;

    public HostMessage() {
    }

    public static HostMessage question(QuestionTask task) {
        HostMessage m = new HostMessage();
        m.hostKey = BlockKeys.documentVersion(task.docId, task.version);
        m.task = task;
        return m;
    }

    public static HostMessage partials(String hostKey, int block, long pass, int layer, byte[] partials) {
        HostMessage m = new HostMessage();
        m.hostKey = hostKey;
        m.block = block;
        m.pass = pass;
        m.layer = layer;
        m.partials = partials;
        return m;
    }

    public static HostMessage blockGone(String hostKey, int block, long pass, int layer, String reason) {
        HostMessage m = partials(hostKey, block, pass, layer, null);
        m.blockGone = reason;
        return m;
    }

    public boolean isQuestion() {
        return task != null;
    }
}
