package org.starflink.operators.host;

/** Where a question's generation stands (a Flink POJO kept in the query host's keyed state). */
public class HostProgress {
    /** 0 = the question's pass; n = the pass of the n-th generated token. */
    public int pass;
    /** The layer whose partials are being collected. */
    public int layer;
    /** Partials of (pass, layer) received so far. */
    public int partialsReceived;
    /** Processing time the current layer's requests went out (layer round trip). */
    public long layerSentNanos;
    /** Processing time the current pass started (time per output token). */
    public long passStartedNanos;
    /** Milliseconds from arrival to the first token; 0 until then. */
    public long prefillMs;
    /** Bytes written to keyed state by the current pass so far (for the bytes-per-token metric). */
    public long stateBytesThisPass;
    /** The tokens generated so far. */
    public int[] tokens;

    public HostProgress() {
    }
}
