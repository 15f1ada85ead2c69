package org.starflink.engine.generate;

/** Why generation ended; the wire names are lower case. */
public enum FinishReason {
    EOS, LENGTH, STOP;

    public String wireName() {
        return name().toLowerCase(java.util.Locale.ROOT);
    }
}
