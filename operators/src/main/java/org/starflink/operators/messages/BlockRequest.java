package org.starflink.operators.messages;

/**
 * One layer of one pass of a query host's batch, sent to one context block (keyed by {@link #blockKey}). The body
 * is the engine's binary batch of {@code LayerRequest}s (layer, positions, q rows): one per question of the batch
 * that covers this block, in the batch's order.
 */
public class BlockRequest {
    public String blockKey;
    /** The query host to answer ({@link BlockKeys#documentVersion}). */
    public String hostKey;
    public int block;
    /**
     * The batch's block count: the same layer went to blocks 0..blocks-1 (each subtask answers for those it holds
     * in one message).
     */
    public int blocks;
    /** Which pass of the host: tells stale replies apart. */
    public long pass;
    public int layer;
    public byte[] requests;

    public BlockRequest() {
    }

    public BlockRequest(String blockKey, String hostKey, int block, int blocks, long pass, int layer,
                        byte[] requests) {
        this.blockKey = blockKey;
        this.hostKey = hostKey;
        this.block = block;
        this.blocks = blocks;
        this.pass = pass;
        this.layer = layer;
        this.requests = requests;
    }
}
