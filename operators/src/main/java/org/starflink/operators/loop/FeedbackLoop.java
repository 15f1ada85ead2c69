package org.starflink.operators.loop;

import java.util.Objects;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.functions.KeySelector;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.datastream.KeyedStream;
import org.apache.flink.streaming.api.datastream.SingleOutputStreamOperator;

/**
 * A cycle in a Flink 2.x streaming job (which has no iteration API): a keyed loop head whose output feeds a loop
 * body, and a loop tail that hands the body's feedback back to the head in the same JVM.
 *
 * <pre>{@code
 * FeedbackLoop<Hidden, String> loop = FeedbackLoop.open("layers", questions.keyBy(Hidden::questionId), 64);
 * SingleOutputStreamOperator<Hidden> body = loop.head()          // input records + feedback records
 *         .keyBy(Hidden::questionId).process(new OneLayer()).uid("layer").name("layer");
 * loop.close(body,                                               // go around once more
 *            body.getSideOutput(OneLayer.DONE));                 // keys whose record left the loop
 * }</pre>
 *
 * <p><b>Contract for the body.</b> Every record the head emits is eventually continued by feedback records or
 * finished; for each record that entered through the loop's input exactly one exit key must be sent, after its
 * last feedback record. Feedback records and exit keys must carry the key of the record they continue (the tail
 * re-keys them with the loop's key selector so that they reach the head subtask that owns their key group).
 *
 * <p><b>Guarantees.</b> With aligned checkpoints, the loop is exactly-once for state: records on the in-JVM
 * feedback edge at a checkpoint are logged in the head's raw keyed state (per key group, so the job can be
 * restored at another parallelism) and replayed on restore. At most {@code maxInFlight} input records are in the
 * loop per head subtask; beyond that the head backpressures its input. With a bounded input the head finishes only
 * once the loop is empty. See docs/loop.md.
 *
 * <p><b>Requirements.</b> A max parallelism must be set (on the environment or the head) — head and tail must
 * agree on key groups across restores. Unaligned checkpoints are not supported.
 *
 * @param <T> the record type that circulates
 * @param <K> the loop's key type
 */
public final class FeedbackLoop<T, K> {

    private final String loopId;
    private final KeySelector<T, K> keySelector;
    private final TypeInformation<K> keyType;
    private final SingleOutputStreamOperator<T> head;
    private boolean closed;

    private FeedbackLoop(String loopId, KeySelector<T, K> keySelector, TypeInformation<K> keyType,
            SingleOutputStreamOperator<T> head) {
        this.loopId = loopId;
        this.keySelector = keySelector;
        this.keyType = keyType;
        this.head = head;
    }

    /**
     * Opens a loop: adds the head (uid {@code "<loopId>-loop-head"}) after {@code input}.
     *
     * @param loopId unique within the job; names the operators and the channel
     * @param input the records entering the loop, keyed by the loop's key
     * @param maxInFlight per head subtask, how many input records may be in the loop at once
     */
    public static <T, K> FeedbackLoop<T, K> open(String loopId, KeyedStream<T, K> input, int maxInFlight) {
        return open(loopId, input, maxInFlight, true);
    }

    /** {@code checkpointFeedback = false} only for the tests' negative control: shows what the log prevents. */
    static <T, K> FeedbackLoop<T, K> open(String loopId, KeyedStream<T, K> input, int maxInFlight,
            boolean checkpointFeedback) {
        Objects.requireNonNull(loopId, "loopId");
        TypeInformation<T> type = input.getType();
        SingleOutputStreamOperator<T> head = input
                .transform("Loop head: " + loopId, type,
                        new LoopHeadOperatorFactory<>(loopId, maxInFlight, input.getKeySelector(), type,
                                checkpointFeedback))
                .uid(headUid(loopId))
                .name("Loop head: " + loopId)
                // Every lap crosses the head's output edge: flush per record instead of waiting up to the buffer
                // timeout (default 100 ms) per lap. The body's edges should do the same (job-wide:
                // execution.buffer-timeout.interval: 0).
                .setBufferTimeout(0);
        // Head subtask i and tail subtask i must be in one slot, hence one JVM. Flink reads the co-location key
        // from the first operator of each chain; the head has a keyed input, so it always starts its chain.
        head.getTransformation().setCoLocationGroupKey(coLocationGroup(loopId));
        return new FeedbackLoop<>(loopId, input.getKeySelector(), input.getKeyType(), head);
    }

    /** The head's output: the loop's input records followed by feedback records, as they come. */
    public SingleOutputStreamOperator<T> head() {
        return head;
    }

    /**
     * Closes the loop: adds the tail (uid {@code "<loopId>-loop-tail"}) that sends {@code feedback} back to the head
     * and reports {@code exits} to it. Set the head's parallelism before calling this; the tail copies it.
     *
     * @param feedback records that go around the loop once more
     * @param exits the key of each input record that has left the loop, exactly one per admitted record
     */
    public void close(DataStream<T> feedback, DataStream<K> exits) {
        if (closed) {
            throw new IllegalStateException("feedback loop '" + loopId + "' is already closed");
        }
        closed = true;
        int maxParallelism = head.getTransformation().getMaxParallelism() > 0
                ? head.getTransformation().getMaxParallelism()
                : head.getExecutionEnvironment().getConfig().getMaxParallelism();
        if (maxParallelism <= 0) {
            throw new IllegalStateException("feedback loop '" + loopId + "': set a max parallelism (environment or "
                    + "head) so that loop head and tail agree on key groups, also after a restore");
        }
        head.setMaxParallelism(maxParallelism);

        SingleOutputStreamOperator<Void> tail = feedback.keyBy(keySelector, keyType)
                .connect(exits.keyBy(new IdentityKey<>(), keyType))
                .transform("Loop tail: " + loopId, Types.VOID, new LoopTailOperator<T, K>(loopId))
                .uid(tailUid(loopId))
                .name("Loop tail: " + loopId)
                .setParallelism(head.getParallelism())
                .setMaxParallelism(maxParallelism);
        // The tail has keyed inputs, so it always starts its chain: the key is not dropped (see open()).
        tail.getTransformation().setCoLocationGroupKey(coLocationGroup(loopId));
        head.getTransformation().getSlotSharingGroup().ifPresent(tail::slotSharingGroup);
    }

    public static String headUid(String loopId) {
        return loopId + "-loop-head";
    }

    public static String tailUid(String loopId) {
        return loopId + "-loop-tail";
    }

    public static String coLocationGroup(String loopId) {
        return "feedback-loop-" + loopId;
    }

    /** Exit streams carry the key itself. */
    private static final class IdentityKey<K> implements KeySelector<K, K> {
        private static final long serialVersionUID = 1L;

        @Override
        public K getKey(K value) {
            return value;
        }
    }
}
