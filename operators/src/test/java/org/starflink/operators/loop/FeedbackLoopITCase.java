package org.starflink.operators.loop;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.LongStream;
import org.apache.flink.api.common.JobID;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.connector.source.util.ratelimit.RateLimiterStrategy;
import org.apache.flink.configuration.CheckpointingOptions;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.ExecutionOptions;
import org.apache.flink.configuration.RestartStrategyOptions;
import org.apache.flink.configuration.StateBackendOptions;
import org.apache.flink.configuration.StateRecoveryOptions;
import org.apache.flink.connector.datagen.source.DataGeneratorSource;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.core.execution.SavepointFormatType;
import org.apache.flink.metrics.Counter;
import org.apache.flink.metrics.Gauge;
import org.apache.flink.metrics.MetricGroup;
import org.apache.flink.runtime.jobgraph.JobGraph;
import org.apache.flink.runtime.jobgraph.JobVertex;
import org.apache.flink.runtime.testutils.InMemoryReporter;
import org.apache.flink.runtime.testutils.MiniClusterResourceConfiguration;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.test.junit5.MiniClusterExtension;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.starflink.operators.cluster.LoopbackCluster;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.starflink.operators.loop.ToyLayerJob.CollectingSink;
import org.starflink.operators.loop.ToyLayerJob.Result;
import org.starflink.operators.loop.ToyLayerJob.Step;

/**
 * The feedback loop on a MiniCluster with RocksDB, checkpoints and {@code execution.buffer-timeout.interval: 0}:
 * a toy keyed job where every record goes around the loop {@link #LAYERS} times.
 */
class FeedbackLoopITCase {

    static final int LAYERS = 8;
    static final int MAX_PARALLELISM = 128;

    static final InMemoryReporter METRICS = InMemoryReporter.createWithRetainedMetrics();

    @RegisterExtension
    static final MiniClusterExtension MINI_CLUSTER = new MiniClusterExtension(
            new MiniClusterResourceConfiguration.Builder()
                    .setConfiguration(LoopbackCluster.apply(METRICS.addToConfiguration(new Configuration())))
                    .setNumberTaskManagers(1)
                    .setNumberSlotsPerTaskManager(2)
                    .build());

    @TempDir
    Path checkpoints;

    @BeforeEach
    void reset() {
        ToyLayerJob.resetHooks();
    }

    @AfterEach
    void channelsAreReleased() throws InterruptedException {
        // Head and tail release their channel on close; a leak would grow the JVM-wide registry per attempt.
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (LoopChannel.openChannels() > 0 && System.nanoTime() < deadline) {
            Thread.sleep(20);
        }
        assertEquals(0, LoopChannel.openChannels(), "loop channels left open");
    }

    StreamExecutionEnvironment env(int parallelism, Configuration extra) {
        Configuration conf = new Configuration();
        conf.set(StateBackendOptions.STATE_BACKEND, "rocksdb");
        conf.set(CheckpointingOptions.CHECKPOINT_STORAGE, "filesystem");
        conf.set(CheckpointingOptions.CHECKPOINTS_DIRECTORY, checkpoints.toUri().toString());
        conf.set(CheckpointingOptions.INCREMENTAL_CHECKPOINTS, true);
        conf.set(CheckpointingOptions.CHECKPOINTING_INTERVAL, Duration.ofMillis(100));
        conf.set(ExecutionOptions.BUFFER_TIMEOUT, Duration.ZERO);
        conf.set(RestartStrategyOptions.RESTART_STRATEGY, "fixed-delay");
        conf.set(RestartStrategyOptions.RESTART_STRATEGY_FIXED_DELAY_ATTEMPTS, 3);
        conf.set(RestartStrategyOptions.RESTART_STRATEGY_FIXED_DELAY_DELAY, Duration.ofMillis(100));
        conf.addAll(extra);
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment(conf);
        env.setParallelism(parallelism);
        env.setMaxParallelism(MAX_PARALLELISM);
        return env;
    }

    static List<Step> steps(int n) {
        List<Step> steps = new ArrayList<>();
        for (long key = 0; key < n; key++) {
            steps.add(new Step(key, 0, ToyLayerJob.initialValue(key)));
        }
        return steps;
    }

    /** A bounded source that emits {@code n} steps at {@code perSecond}, restartable from its checkpointed index. */
    static DataStream<Step> slowSteps(StreamExecutionEnvironment env, int n, double perSecond) {
        DataGeneratorSource<Step> source = new DataGeneratorSource<>(
                key -> new Step(key, 0, ToyLayerJob.initialValue(key)), n,
                RateLimiterStrategy.perSecond(perSecond), Types.POJO(Step.class));
        return env.fromSource(source, WatermarkStrategy.noWatermarks(), "steps").uid("steps").setParallelism(1);
    }

    /** Counts per key; fails on a wrong value or pass count; returns the number of duplicates. */
    static int assertEveryKeyOnceOrMore(String run, int n) {
        Map<Long, Integer> seen = new HashMap<>();
        for (Result r : CollectingSink.results(run)) {
            assertEquals(ToyLayerJob.expectedValue(r.key(), LAYERS), r.value(), "value of key " + r.key());
            assertEquals(LAYERS, r.passes(), "passes recorded in keyed state for key " + r.key());
            seen.merge(r.key(), 1, Integer::sum);
        }
        List<Long> missing = LongStream.range(0, n).filter(k -> !seen.containsKey(k)).boxed().toList();
        assertTrue(missing.isEmpty(), missing.size() + " results lost, e.g. keys " + missing.stream().limit(10).toList());
        assertEquals(n, seen.size(), "unexpected keys");
        return seen.values().stream().mapToInt(c -> c - 1).sum();
    }

    /** Sums a loop-head counter over all subtasks and all attempts of a job (the reporter retains them). */
    static long sumCounter(JobID job, String metric) {
        long sum = 0;
        for (MetricGroup group : METRICS.findOperatorMetricGroups(job, "Loop head.*")) {
            if (METRICS.getMetricsByGroup(group).get(metric) instanceof Counter c) {
                sum += c.getCount();
            }
        }
        return sum;
    }

    /** A loop-head gauge's value per subtask (and attempt) of a job. */
    static List<Long> loopHeadGauges(JobID job, String metric) {
        List<Long> values = new ArrayList<>();
        for (MetricGroup group : METRICS.findOperatorMetricGroups(job, "Loop head.*")) {
            if (METRICS.getMetricsByGroup(group).get(metric) instanceof Gauge<?> g) {
                values.add(((Number) g.getValue()).longValue());
            }
        }
        return values;
    }

    @Test
    void everyRecordGoesAroundAllLayersExactlyOnce() throws Exception {
        int n = 500;
        StreamExecutionEnvironment env = env(2, new Configuration());
        ToyLayerJob.defineWorkflow(env.fromData(steps(n)).setParallelism(1), LAYERS, 64, 2, 0)
                .sinkTo(new CollectingSink("no-failure")).uid("results").name("results");
        long t0 = System.nanoTime();
        JobClient job = env.executeAsync("loop-no-failure");
        job.getJobExecutionResult().get(120, TimeUnit.SECONDS);
        System.out.printf("no failure: %d results in %.1fs, feedback records %d%n",
                CollectingSink.results("no-failure").size(), (System.nanoTime() - t0) / 1e9,
                sumCounter(job.getJobID(), LoopHeadOperator.METRIC_FEEDBACK));

        // A bounded job that finishes with every result proves the head did not finish with records in the loop.
        assertEquals(0, assertEveryKeyOnceOrMore("no-failure", n), "duplicates without any failure");
        assertEquals((long) n * (LAYERS - 1), sumCounter(job.getJobID(), LoopHeadOperator.METRIC_FEEDBACK));
    }

    @Test
    void failureMidLoopAfterACheckpointLosesNothing() throws Exception {
        FailoverRun run = failWithParkedRecords("failure", true);
        assertEveryKeyOnceOrMore("failure", run.n);
        assertTrue(run.restored >= run.parked,
                "restored " + run.restored + " records in flight, but " + run.parked + " were parked");
        // No record left the loop before the failure, so the (non-transactional) sink cannot see one twice.
        assertEquals(0, run.duplicates, "duplicates");
    }

    /** Negative control: the same failure without the checkpoint log loses the records on the feedback edge. */
    @Test
    void withoutTheFeedbackLogTheSameFailureLosesRecords() throws Exception {
        FailoverRun run = failWithParkedRecords("no-log", false);
        long missing = LongStream.range(0, run.n)
                .filter(k -> CollectingSink.results("no-log").stream().noneMatch(r -> r.key() == k)).count();
        System.out.printf("negative control: %d results lost (%d records were parked when the failure was armed)%n",
                missing, run.parked);
        assertTrue(missing > 0, "nothing lost without the log: the failover test would not notice a broken log");
    }

    record FailoverRun(int n, int parked, long restored, int duplicates) {}

    FailoverRun failWithParkedRecords(String name, boolean checkpointFeedback) throws Exception {
        int n = 400;
        int parkedAtLeast = 30;
        // Records park at the middle layer (circle without progress) until a checkpoint has completed with them
        // in the loop; then the failure is injected at the middle layer. The restarted attempt parks nothing.
        ToyLayerJob.HOLD.set(true);
        StreamExecutionEnvironment env = env(2, new Configuration());
        ToyLayerJob.defineWorkflow(slowSteps(env, n, 200), LAYERS, 1000, 2, 0, checkpointFeedback)
                .sinkTo(new CollectingSink(name)).uid("results").name("results");
        long t0 = System.nanoTime();
        JobClient job = env.executeAsync("loop-" + name);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (ToyLayerJob.PARKED.size() < parkedAtLeast && System.nanoTime() < deadline) {
            Thread.sleep(10);
        }
        int parked = ToyLayerJob.PARKED.size();
        ToyLayerJob.CHECKPOINT_COMPLETED.set(false);
        ToyLayerJob.FAIL_ARMED.set(true); // fires at the first middle-layer record after the next checkpoint
        while (!ToyLayerJob.FAILED.get() && System.nanoTime() < deadline) {
            Thread.sleep(5);
        }
        assertTrue(ToyLayerJob.FAILED.get(), "the failure was not injected");
        assertTrue(parked >= parkedAtLeast, "only " + parked + " records parked");
        job.getJobExecutionResult().get(180, TimeUnit.SECONDS);
        long logged = sumCounter(job.getJobID(), LoopHeadOperator.METRIC_LOGGED);
        long replayed = sumCounter(job.getJobID(), LoopHeadOperator.METRIC_REPLAYED);
        long restored = sumCounter(job.getJobID(), LoopHeadOperator.METRIC_RESTORED_IN_FLIGHT);

        int duplicates = checkpointFeedback ? assertEveryKeyOnceOrMore(name, n) : -1;
        System.out.printf("%s: %d results in %.1fs, %d duplicates; %d parked at the checkpoint; after "
                        + "restore: %d records in flight, %d feedback records replayed; logged over all attempts %d%n",
                name, CollectingSink.results(name).size(), (System.nanoTime() - t0) / 1e9, duplicates, parked,
                restored, replayed, logged);
        return new FailoverRun(n, parked, restored, duplicates);
    }

    @ParameterizedTest(name = "parallelism {0} -> {1}")
    @CsvSource({"2, 1", "1, 2"})
    void restoresFromSavepointAtAnotherParallelismWithRecordsInTheLoop(int before, int after) throws Exception {
        int n = 300;
        int parkedAtLeast = 40;
        String run = "rescale-" + before + "-" + after;
        // First run: every record parks at the middle layer (circles without progress), so the loop is known to
        // hold records when the savepoint is taken, and none has left it.
        ToyLayerJob.HOLD.set(true);
        StreamExecutionEnvironment first = env(before, new Configuration());
        ToyLayerJob.defineWorkflow(slowSteps(first, n, 200), LAYERS, 1000, before, 0)
                .sinkTo(new CollectingSink(run)).uid("results").name("results");
        JobClient job = first.executeAsync("loop-rescale-first");
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (ToyLayerJob.PARKED.size() < parkedAtLeast && System.nanoTime() < deadline) {
            Thread.sleep(20);
        }
        int parked = ToyLayerJob.PARKED.size();
        assertTrue(parked >= parkedAtLeast, "only " + parked + " records parked");
        String savepoint = job.stopWithSavepoint(false, checkpoints.resolve("savepoints").toUri().toString(),
                SavepointFormatType.CANONICAL).get(60, TimeUnit.SECONDS);
        assertEquals(0, CollectingSink.results(run).size(), "a parked record left the loop");
        ToyLayerJob.HOLD.set(false);

        Configuration restore = new Configuration();
        restore.set(StateRecoveryOptions.SAVEPOINT_PATH, savepoint);
        StreamExecutionEnvironment second = env(after, restore);
        ToyLayerJob.defineWorkflow(slowSteps(second, n, 1000), LAYERS, 1000, after, 0)
                .sinkTo(new CollectingSink(run)).uid("results").name("results");
        JobClient resumed = second.executeAsync("loop-rescale-second");
        resumed.getJobExecutionResult().get(120, TimeUnit.SECONDS);
        long restored = sumCounter(resumed.getJobID(), LoopHeadOperator.METRIC_RESTORED_IN_FLIGHT);
        long replayed = sumCounter(resumed.getJobID(), LoopHeadOperator.METRIC_REPLAYED);

        int duplicates = assertEveryKeyOnceOrMore(run, n);
        System.out.printf("rescale %d -> %d: %d parked when the savepoint was triggered; restored %d in flight, "
                + "replayed %d feedback records; %d results, %d duplicates%n", before, after, parked, restored,
                replayed, CollectingSink.results(run).size(), duplicates);
        assertTrue(restored >= parked, "restored " + restored + " records in flight, but " + parked + " were parked");
        // No result left the loop before the savepoint, so nothing can be seen twice.
        assertEquals(0, duplicates, "duplicates across stop-with-savepoint and restore");
    }

    @Test
    void headNeverAdmitsMoreThanMaxInFlight() throws Exception {
        int n = 300;
        int cap = 4;
        StreamExecutionEnvironment env = env(1, new Configuration());
        ToyLayerJob.defineWorkflow(env.fromData(steps(n)).setParallelism(1), LAYERS, cap, 1, 0)
                .sinkTo(new CollectingSink("cap")).uid("results").name("results");
        JobID job = env.execute("loop-cap").getJobID();
        assertEquals(0, assertEveryKeyOnceOrMore("cap", n));
        int max = ToyLayerJob.MAX_LIVE_IN_BODY.get();
        long delayed = sumCounter(job, LoopHeadOperator.METRIC_ADMISSIONS_DELAYED);
        System.out.printf("cap %d: at most %d records in the loop body at once, %d admissions waited%n", cap, max,
                delayed);
        assertTrue(max <= cap, "more than " + cap + " records in the loop: " + max);
        assertTrue(max > 1, "the loop never held more than one record: the cap was not exercised");
        // What the cluster sees of it: the head's peak gauge is the cap, and records waited for admission.
        assertEquals(List.of((long) cap), loopHeadGauges(job, LoopHeadOperator.METRIC_PEAK_IN_FLIGHT));
        assertTrue(delayed > 0, "no input record waited at the cap");
    }

    @Test
    void headAndTailShareACoLocationGroup() {
        StreamExecutionEnvironment env = env(2, new Configuration());
        ToyLayerJob.defineWorkflow(env.fromData(steps(10)).setParallelism(1), LAYERS, 8, 2, 0)
                .sinkTo(new CollectingSink("graph")).uid("results").name("results");
        JobGraph graph = env.getStreamGraph(false).getJobGraph();
        JobVertex head = null;
        JobVertex tail = null;
        for (JobVertex vertex : graph.getVertices()) {
            if (vertex.getName().contains("Loop head: layers")) {
                assertNull(head, "two head vertices");
                head = vertex;
            } else if (vertex.getName().contains("Loop tail: layers")) {
                assertNull(tail, "two tail vertices");
                tail = vertex;
            } else {
                assertNull(vertex.getCoLocationGroup(), "unexpected co-location on " + vertex.getName());
            }
        }
        assertNotNull(head, "no head vertex");
        assertNotNull(tail, "no tail vertex");
        assertNotNull(head.getCoLocationGroup(), "head has no co-location group");
        assertSame(head.getCoLocationGroup(), tail.getCoLocationGroup(), "head and tail in different groups");
        assertSame(head.getSlotSharingGroup(), tail.getSlotSharingGroup(), "head and tail in different slot groups");
        assertEquals(head.getParallelism(), tail.getParallelism());
        assertEquals(head.getMaxParallelism(), tail.getMaxParallelism());
    }
}
