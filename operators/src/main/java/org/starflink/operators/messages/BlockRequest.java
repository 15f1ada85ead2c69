package org.starflink.operators.messages;

/**
 * One layer of one question's pass, sent by the query host to one context block (keyed by {@link #blockKey}).
 * The request body is the engine's binary {@code LayerRequest} (layer, positions, q rows): identical for every
 * block of the fan-out.
 */
public class BlockRequest {
    public String blockKey;
    public String questionId;
    public int block;
    /** Which pass of the question (0 = the question, n = the n-th generated token): tells stale replies apart. */
    public int pass;
    public int layer;
    public byte[] request;

    public BlockRequest() {
    }

    public BlockRequest(String blockKey, String questionId, int block, int pass, int layer, byte[] request) {
        this.blockKey = blockKey;
        this.questionId = questionId;
        this.block = block;
        this.pass = pass;
        this.layer = layer;
        this.request = request;
    }
}
