package org.starflink.operators.loop;

import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.state.CheckpointListener;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.connector.sink2.Sink;
import org.apache.flink.api.connector.sink2.SinkWriter;
import org.apache.flink.api.connector.sink2.WriterInitContext;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.datastream.SingleOutputStreamOperator;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.util.Collector;
import org.apache.flink.util.OutputTag;

/**
 * The toy stand-in for the per-layer query host: each input {@link Step} goes around the loop {@code layers}
 * times; every pass runs one "layer" (a keyed function that counts its passes in RocksDB state and mixes the
 * value); after the last layer a {@link Result} leaves the loop.
 *
 * <p>The pass count in keyed state makes state errors visible: a pass lost or replayed twice into state gives
 * {@code passes != layers}; a feedback record lost on the in-JVM edge gives a missing result.
 */
public final class ToyLayerJob {

    public record Step(long key, int layer, long value) {}

    public record Result(long key, long value, int passes) {}

    static final OutputTag<Result> RESULTS = new OutputTag<>("results", Types.POJO(Result.class));
    static final OutputTag<Long> EXITS = new OutputTag<>("exits", Types.LONG);

    // Test hooks. Tests in one JVM run one job at a time; each resets these first.
    static final AtomicBoolean FAIL_ARMED = new AtomicBoolean();
    static final AtomicBoolean CHECKPOINT_COMPLETED = new AtomicBoolean();
    static final AtomicBoolean FAILED = new AtomicBoolean();
    static final AtomicInteger LIVE_IN_BODY = new AtomicInteger();
    static final AtomicInteger MAX_LIVE_IN_BODY = new AtomicInteger();
    /**
     * While set, records reaching the middle layer in a job's first attempt circle without progress ("parked"):
     * they stay in the loop.
     */
    static final AtomicBoolean HOLD = new AtomicBoolean();
    static final Set<Long> PARKED = ConcurrentHashMap.newKeySet();

    static void resetHooks() {
        FAIL_ARMED.set(false);
        CHECKPOINT_COMPLETED.set(false);
        FAILED.set(false);
        LIVE_IN_BODY.set(0);
        MAX_LIVE_IN_BODY.set(0);
        HOLD.set(false);
        PARKED.clear();
    }

    static long initialValue(long key) {
        return key * 7919 + 17;
    }

    static long layer(long value, int layer) {
        return value * 6364136223846793005L + 1442695040888963407L + layer;
    }

    static long expectedValue(long key, int layers) {
        long v = initialValue(key);
        for (int l = 0; l < layers; l++) {
            v = layer(v, l);
        }
        return v;
    }

    /** Wires source -> loop(layers x body) -> results. */
    static DataStream<Result> defineWorkflow(DataStream<Step> steps, int layers, int maxInFlight, int parallelism,
            long sleepMicrosPerPass) {
        return defineWorkflow(steps, layers, maxInFlight, parallelism, sleepMicrosPerPass, true);
    }

    static DataStream<Result> defineWorkflow(DataStream<Step> steps, int layers, int maxInFlight, int parallelism,
            long sleepMicrosPerPass, boolean checkpointFeedback) {
        FeedbackLoop<Step, Long> loop =
                FeedbackLoop.open("layers", steps.keyBy(Step::key), maxInFlight, checkpointFeedback);
        loop.head().setParallelism(parallelism);
        SingleOutputStreamOperator<Step> body = loop.head()
                .keyBy(Step::key)
                .process(new OneLayer(layers, sleepMicrosPerPass))
                .uid("toy-layer").name("toy layer")
                .setParallelism(parallelism);
        loop.close(body, body.getSideOutput(EXITS));
        return body.getSideOutput(RESULTS);
    }

    static final class OneLayer extends KeyedProcessFunction<Long, Step, Step> implements CheckpointListener {
        private static final ValueStateDescriptor<Integer> PASSES = new ValueStateDescriptor<>("passes", Types.INT);
        private final int layers;
        private final long sleepMicros;
        private transient ValueState<Integer> passes;

        OneLayer(int layers, long sleepMicros) {
            this.layers = layers;
            this.sleepMicros = sleepMicros;
        }

        @Override
        public void open(OpenContext context) {
            passes = getRuntimeContext().getState(PASSES);
        }

        @Override
        public void processElement(Step step, Context ctx, Collector<Step> out) throws Exception {
            if (sleepMicros > 0) {
                Thread.sleep(sleepMicros / 1000, (int) (sleepMicros % 1000) * 1000);
            }
            if (step.layer() == 0) {
                MAX_LIVE_IN_BODY.accumulateAndGet(LIVE_IN_BODY.incrementAndGet(), Math::max);
            }
            if (step.layer() == layers / 2 && FAIL_ARMED.get() && CHECKPOINT_COMPLETED.get()
                    && FAILED.compareAndSet(false, true)) {
                throw new RuntimeException("injected failure at key " + step.key() + " layer " + step.layer());
            }
            // Parking applies to a job's first attempt only: after a failover everything proceeds (a test thread
            // flipping HOLD could race with the cancellation of the failed attempt and let results out twice).
            if (step.layer() == layers / 2 && HOLD.get() && getRuntimeContext().getTaskInfo().getAttemptNumber() == 0) {
                PARKED.add(step.key());
                Thread.sleep(1); // go around again unchanged, slowly, without touching state
                out.collect(step);
                return;
            }
            int n = passes.value() == null ? 1 : passes.value() + 1;
            long value = layer(step.value(), step.layer());
            if (step.layer() + 1 < layers) {
                passes.update(n);
                out.collect(new Step(step.key(), step.layer() + 1, value));
            } else {
                passes.clear();
                LIVE_IN_BODY.decrementAndGet();
                ctx.output(RESULTS, new Result(step.key(), value, n));
                ctx.output(EXITS, step.key());
            }
        }

        @Override
        public void notifyCheckpointComplete(long checkpointId) {
            CHECKPOINT_COMPLETED.set(true);
        }
    }

    /**
     * Collects into a static map by run name. Not transactional: after a failover it sees again what was emitted
     * after the restored checkpoint (at-least-once), which the tests count as duplicates, separately from losses.
     */
    static final class CollectingSink implements Sink<Result> {
        private static final long serialVersionUID = 1L;
        static final ConcurrentHashMap<String, ConcurrentLinkedQueue<Result>> COLLECTED = new ConcurrentHashMap<>();
        private final String run;

        CollectingSink(String run) {
            this.run = run;
            COLLECTED.computeIfAbsent(run, r -> new ConcurrentLinkedQueue<>());
        }

        static ConcurrentLinkedQueue<Result> results(String run) {
            return COLLECTED.computeIfAbsent(run, r -> new ConcurrentLinkedQueue<>());
        }

        @Override
        public SinkWriter<Result> createWriter(WriterInitContext context) {
            ConcurrentLinkedQueue<Result> target = results(run);
            return new SinkWriter<>() {
                @Override
                public void write(Result element, Context context) {
                    target.add(element);
                }

                @Override
                public void flush(boolean endOfInput) {}

                @Override
                public void close() {}
            };
        }
    }

    private ToyLayerJob() {}
}
