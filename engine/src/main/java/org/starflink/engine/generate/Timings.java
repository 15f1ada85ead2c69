package org.starflink.engine.generate;

/**
 * Wall-clock timings of one generation.
 *
 * @param prefillTokens tokens encoded before the first generated token (context and prompt)
 * @param prefillNanos  time to encode them and produce the first token's logits
 * @param decodeTokens  tokens fed back after the first (each one forward pass)
 * @param decodeNanos   time of those passes
 */
public record Timings(int prefillTokens, long prefillNanos, int decodeTokens, long decodeNanos) {

    public double prefillTokensPerSecond() {
        return perSecond(prefillTokens, prefillNanos);
    }

    public double decodeTokensPerSecond() {
        return perSecond(decodeTokens, decodeNanos);
    }

    private static double perSecond(int tokens, long nanos) {
        return nanos == 0 ? 0 : tokens * 1e9 / nanos;
    }
}
