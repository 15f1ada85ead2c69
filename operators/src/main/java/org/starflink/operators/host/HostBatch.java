package org.starflink.operators.host;

/**
 * The questions of one query host (one document version) that go through the layers together, and the layer in
 * flight (a Flink POJO in the host's keyed state). Every member is in the same pass and layer: one request per
 * block carries all their query rows, one bundle per block subtask brings all their partials back. Questions that arrive
 * during a pass wait for its end and then join; a lone question never waits.
 */
public class HostBatch {
    /** Counts the host's passes (each member's pass 0 is its question, later ones its generated tokens). */
    public long pass;
    /** The layer whose partials are being collected. */
    public int layer;
    /** The questions of this pass, in the order of their rows in every request and partial batch. */
    public String[] members;
    /** Admitted during this pass: they start theirs with the next one. */
    public String[] waiting;
    /** Blocks that answer this layer: the largest block count among the members. */
    public int blocks;
    /** Processing time the layer's requests went out (layer round trip). */
    public long layerSentNanos;

    public HostBatch() {
    }
}
