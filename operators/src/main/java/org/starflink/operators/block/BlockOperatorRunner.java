package org.starflink.operators.block;

import org.apache.flink.streaming.api.operators.co.KeyedCoProcessOperator;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.starflink.operators.messages.BlockCommand;
import org.starflink.operators.messages.BlockRequest;
import org.starflink.operators.messages.HostMessage;

/**
 * The Flink operator that runs a {@link BlockOperator}: Flink's keyed co-process operator, plus the two moments the
 * block's answer bundles need that a function does not see. Before a checkpoint barrier goes downstream, every answer
 * gathered goes out first (so the checkpoint holds it in flight, not in a heap it would lose); and every
 * {@link #SWEEP_MS} the bundles that stopped growing go out (after a restore, {@code PartialBundler}).
 */
public final class BlockOperatorRunner extends KeyedCoProcessOperator<String, BlockCommand, BlockRequest, HostMessage> {
    /** How often idle bundles are looked at, and how long one must have gathered nothing to go out incomplete. */
    static final long SWEEP_MS = 25;

    private final BlockOperator block;

    public BlockOperatorRunner(BlockOperator block) {
        super(block);
        this.block = block;
    }

    @Override
    public void open() throws Exception {
        super.open();
        getProcessingTimeService().scheduleWithFixedDelay(
                now -> block.sweepBundles(now, SWEEP_MS, this::emit), SWEEP_MS, SWEEP_MS);
    }

    @Override
    public void prepareSnapshotPreBarrier(long checkpointId) throws Exception {
        super.prepareSnapshotPreBarrier(checkpointId);
        block.flushBundles(this::emit);
    }

    private void emit(HostMessage message) {
        output.collect(new StreamRecord<>(message));
    }
}
