package org.starflink.operators.host;

/** Where one question's generation stands (a Flink POJO kept in the query host's keyed state, per question). */
public class HostProgress {
    /** Processing time the question's current pass started (time per output token). */
    public long passStartedNanos;
    /** Milliseconds from arrival to the first token; 0 until then. */
    public long prefillMs;
    /** Bytes written to keyed state for this question by its current pass so far (bytes-per-token metric). */
    public long stateBytesThisPass;
    /** The tokens generated so far. */
    public int[] tokens;

    public HostProgress() {
    }
}
