package org.starflink.operators.host;

/** Where one question's generation stands (a Flink POJO kept in the query host's keyed state, per question). */
public class HostProgress {
    /** Milliseconds from arrival to the first token; 0 until then. */
    public long prefillMs;
    /** The tokens generated so far. */
    public int[] tokens;

    public HostProgress() {
    }
}
