package org.starflink.operators.loop;

import org.apache.flink.streaming.api.operators.AbstractStreamOperator;
import org.apache.flink.streaming.api.operators.TwoInputStreamOperator;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;

/**
 * Loop tail: hands feedback records (input 1) and exit keys (input 2) to the co-located {@link LoopHeadOperator}
 * through the in-JVM {@link LoopChannel}, and marks each checkpoint in the channel with a sentinel.
 *
 * <p>Both inputs are keyed with the loop's key (see {@link FeedbackLoop#close}), so subtask i receives exactly the
 * key groups that head subtask i owns. The tail emits nothing downstream and keeps no state.
 */
public final class LoopTailOperator<T, K> extends AbstractStreamOperator<Void>
        implements TwoInputStreamOperator<T, K, Void> {

    private static final long serialVersionUID = 1L;

    private final String loopId;
    private transient LoopChannel channel;

    public LoopTailOperator(String loopId) {
        this.loopId = loopId;
    }

    @Override
    public void open() throws Exception {
        super.open();
        channel = LoopChannel.acquire(LoopHeadOperator.channelKey(loopId, getRuntimeContext()));
    }

    @Override
    public void processElement1(StreamRecord<T> element) {
        channel.put(new LoopChannel.Feedback(element.getValue()));
    }

    @Override
    public void processElement2(StreamRecord<K> element) {
        channel.put(new LoopChannel.Exit(element.getValue()));
    }

    /**
     * Called when checkpoint N's barrier has arrived on all inputs, before it is forwarded. Everything put before
     * the sentinel was sent "before the barrier": the head logs it into checkpoint N.
     */
    @Override
    public void prepareSnapshotPreBarrier(long checkpointId) throws Exception {
        super.prepareSnapshotPreBarrier(checkpointId);
        channel.put(new LoopChannel.Sentinel(checkpointId));
    }

    @Override
    public void close() throws Exception {
        try {
            if (channel != null) {
                LoopChannel.release(channel);
                channel = null;
            }
        } finally {
            super.close();
        }
    }
}
