package org.starflink.operators.loop;

import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeutils.TypeSerializer;
import org.apache.flink.api.java.functions.KeySelector;
import org.apache.flink.streaming.api.operators.AbstractStreamOperatorFactory;
import org.apache.flink.streaming.api.operators.OneInputStreamOperatorFactory;
import org.apache.flink.streaming.api.operators.StreamOperator;
import org.apache.flink.streaming.api.operators.StreamOperatorParameters;

/**
 * Creates {@link LoopHeadOperator}s. A factory (rather than an operator instance) because the head needs its task's
 * mailbox executor, which only {@link StreamOperatorParameters} provide.
 */
public final class LoopHeadOperatorFactory<T, K> extends AbstractStreamOperatorFactory<T>
        implements OneInputStreamOperatorFactory<T, T> {

    private static final long serialVersionUID = 1L;

    private final String loopId;
    private final int maxInFlight;
    private final KeySelector<T, K> keySelector;
    private final TypeInformation<T> type;
    private final boolean checkpointFeedback;

    public LoopHeadOperatorFactory(String loopId, int maxInFlight, KeySelector<T, K> keySelector,
            TypeInformation<T> type) {
        this(loopId, maxInFlight, keySelector, type, true);
    }

    LoopHeadOperatorFactory(String loopId, int maxInFlight, KeySelector<T, K> keySelector,
            TypeInformation<T> type, boolean checkpointFeedback) {
        if (maxInFlight < 1) {
            throw new IllegalArgumentException("maxInFlight must be >= 1, got " + maxInFlight);
        }
        this.loopId = loopId;
        this.maxInFlight = maxInFlight;
        this.keySelector = keySelector;
        this.type = type;
        this.checkpointFeedback = checkpointFeedback;
    }

    @Override
    @SuppressWarnings("unchecked")
    public <O extends StreamOperator<T>> O createStreamOperator(StreamOperatorParameters<T> parameters) {
        TypeSerializer<T> serializer = type.createSerializer(
                parameters.getContainingTask().getExecutionConfig().getSerializerConfig());
        return (O) new LoopHeadOperator<>(parameters, loopId, maxInFlight, keySelector, serializer,
                checkpointFeedback);
    }

    @Override
    @SuppressWarnings("rawtypes")
    public Class<? extends StreamOperator> getStreamOperatorClass(ClassLoader classLoader) {
        return LoopHeadOperator.class;
    }
}
