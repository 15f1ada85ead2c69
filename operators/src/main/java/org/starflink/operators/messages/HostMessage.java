package org.starflink.operators.messages;

/**
 * What reaches the query host (keyed by {@link #hostKey}, one document version) through the per-layer loop: either
 * a new question ({@link #task} set), or some blocks' partials for one layer of the host's batch ({@link #partials}
 * set: the engine's bundle of partial batches, one batch per block, one partial per question of the request, in the
 * request's order; the blocks of one subtask answer in one bundle), or a block's word that it can no longer answer
 * ({@link #blockGone} set).
 */
public class HostMessage {
    /** {@link BlockKeys#documentVersion}: the loop's key. */
    public String hostKey;
    /** A new question entering the loop, or null. */
    public QuestionTask task;
    /** The block that cannot answer ({@link #blockGone}); unused otherwise. */
    public int block;
    /** The host's pass the partials answer (tells stale replies apart). */
    public long pass;
    public int layer;
    /** The engine's bundle ({@code PhaseTwoCodec.bundleToBytes}): each covered block's partial batch, or null. */
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

    public static HostMessage partials(String hostKey, long pass, int layer, byte[] bundle) {
        HostMessage m = new HostMessage();
        m.hostKey = hostKey;
        m.pass = pass;
        m.layer = layer;
        m.partials = bundle;
        return m;
    }

    public static HostMessage blockGone(String hostKey, int block, long pass, int layer, String reason) {
        HostMessage m = partials(hostKey, pass, layer, null);
        m.block = block;
        m.blockGone = reason;
        return m;
    }

    public boolean isQuestion() {
        return task != null;
    }
}
