package org.starflink.operators.block;

import org.apache.flink.metrics.Counter;
import org.apache.flink.metrics.Histogram;
import org.apache.flink.metrics.MetricGroup;
import org.apache.flink.runtime.metrics.DescriptiveStatisticsHistogram;

/**
 * The block operator's metrics, in the group starflink.block. A restore that works shows as
 * {@value #ENCODES_SKIPPED} (replayed encode commands for blocks already in state) and no new
 * {@value #BLOCKS_ENCODED} for those blocks.
 */
final class BlockMetrics {
    static final String GROUP = "block";
    static final String BLOCKS_ENCODED = "blocksEncoded";
    static final String ENCODES_SKIPPED = "encodesSkipped";
    static final String PHASE1_MILLIS = "phase1Millis";
    /** Blocks whose KV was assembled from their state pages for a request: not (or no longer) in the local cache. */
    static final String KV_LOADS_FROM_STATE = "kvLoadsFromState";
    private static final int WINDOW = 1000;

    private final Counter blocksEncoded;
    private final Counter encodesSkipped;
    private final Histogram phase1Millis;
    private final Counter phase1Tokens;
    private final Counter phase1Nanos;
    private final Counter blocksRetired;
    private final Counter partialsServed;
    private final Counter kvBytesEncoded;
    private final Counter kvLoadsFromState;

    BlockMetrics(MetricGroup parent, KvCacheLru decoded, PartialBundler bundler) {
        MetricGroup group = parent.addGroup("starflink").addGroup(GROUP);
        blocksEncoded = group.counter(BLOCKS_ENCODED);
        encodesSkipped = group.counter(ENCODES_SKIPPED);
        phase1Millis = group.histogram(PHASE1_MILLIS, new DescriptiveStatisticsHistogram(WINDOW));
        phase1Tokens = group.counter("phase1Tokens");
        phase1Nanos = group.counter("phase1Nanos");
        blocksRetired = group.counter("blocksRetired");
        partialsServed = group.counter("partialsServed");
        kvBytesEncoded = group.counter("kvBytesEncoded");
        kvLoadsFromState = group.counter(KV_LOADS_FROM_STATE);
        group.gauge("phase1TokensPerSecond", () -> phase1Nanos.getCount() == 0 ? 0.0
                : phase1Tokens.getCount() * 1e9 / phase1Nanos.getCount());
        group.gauge("kvBytesCached", decoded::bytes);
        // layers whose bundle still waits for some of this subtask's blocks (a size read: racy, never wrong for long)
        group.gauge("bundlesGathering", bundler::open);
    }

    void encoded(int tokens, long nanos, long kvBytes) {
        blocksEncoded.inc();
        phase1Millis.update(nanos / 1_000_000);
        phase1Tokens.inc(tokens);
        phase1Nanos.inc(nanos);
        kvBytesEncoded.inc(kvBytes);
    }

    void skipped() {
        encodesSkipped.inc();
    }

    void answered() {
        partialsServed.inc();
    }

    void loadedFromState() {
        kvLoadsFromState.inc();
    }

    void dropped() {
        blocksRetired.inc();
    }
}
