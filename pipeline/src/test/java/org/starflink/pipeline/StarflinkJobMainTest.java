package org.starflink.pipeline;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.time.Duration;
import java.util.List;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.ExecutionOptions;
import org.apache.flink.configuration.PipelineOptions;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.graph.StreamGraph;
import org.apache.flink.streaming.api.graph.StreamNode;
import org.junit.jupiter.api.Test;
import org.starflink.engine.testing.SharedModels;

/**
 * What {@link StarflinkJob#main} does before it submits: settings from the cluster's configuration with the
 * program arguments on top, what the job needs set by itself, and one clear line for what it cannot do without.
 * (The whole entry point runs on a multi-process cluster in the integration tests' {@code StarflinkClusterIT}.)
 */
class StarflinkJobMainTest {
    private static final String MODEL = SharedModels.stories260KDir().resolve("stories260K.bin").toString();

    private static Configuration cluster() {
        Configuration cluster = new Configuration();
        cluster.setString("starflink.model", MODEL);
        cluster.setString("starflink.block-size", "256");
        cluster.setString("starflink.kafka.bootstrap-servers", "127.0.0.1:1");
        return cluster;
    }

    @Test
    void programArgumentsGoOverTheClustersConfiguration() {
        Configuration options = StarflinkJob.jobOptions(cluster(),
                new String[] {"--starflink.block-size", "64", "--starflink.topic.answers", "out"});
        assertEquals(MODEL, options.get(StarflinkOptions.MODEL));
        assertEquals(64, options.get(StarflinkOptions.BLOCK_SIZE));
        assertEquals("out", options.get(StarflinkOptions.ANSWERS_TOPIC));
        assertEquals("127.0.0.1:1", options.get(StarflinkOptions.BOOTSTRAP_SERVERS));
    }

    @Test
    void aMissingBrokerAddressFailsWithOneLineNamingTheSetting() {
        Configuration cluster = cluster();
        cluster.removeConfig(StarflinkOptions.BOOTSTRAP_SERVERS);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> StarflinkJob.jobOptions(cluster, new String[0]));
        assertEquals("starflink.kafka.bootstrap-servers is not set: pass --starflink.kafka.bootstrap-servers "
                + "HOST:PORT or set it in the Flink configuration", e.getMessage());
    }

    @Test
    void unalignedCheckpointsAreRefused() {
        Configuration cluster = cluster();
        cluster.setString("execution.checkpointing.unaligned.enabled", "true");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> StarflinkJob.jobOptions(cluster, new String[0]));
        assertEquals("execution.checkpointing.unaligned.enabled is true: the per-layer loop needs aligned "
                + "checkpoints (docs/loop.md); set it to false", e.getMessage());
    }

    @Test
    void theJobSetsTheMaxParallelismTheLoopNeedsAndBuildsItsGraph() {
        StreamGraph graph = kafkaJobGraph(cluster());
        for (StreamNode node : graph.getStreamNodes()) {
            assertEquals(StarflinkJob.DEFAULT_MAX_PARALLELISM, node.getMaxParallelism(), node.getOperatorName());
        }
        assertEquals(0L, source(graph).getBufferTimeout());
    }

    @Test
    void whatTheClusterSetsIsKept() {
        Configuration cluster = cluster();
        cluster.set(PipelineOptions.MAX_PARALLELISM, 64);
        cluster.set(ExecutionOptions.BUFFER_TIMEOUT, Duration.ofMillis(5));
        StreamGraph graph = kafkaJobGraph(cluster);
        for (StreamNode node : graph.getStreamNodes()) {
            assertEquals(64, node.getMaxParallelism(), node.getOperatorName());
        }
        assertEquals(5L, source(graph).getBufferTimeout());
    }

    /** Block events go to their own topic through a sink of their own, on a real cluster like everything else. */
    @Test
    void theKafkaJobWritesBlockEventsThroughItsOwnSink() {
        StreamGraph graph = kafkaJobGraph(cluster());
        StreamNode sink = graph.getStreamNodes().stream()
                .filter(n -> "sink-block-events".equals(n.getTransformationUID())).findFirst()
                .orElseThrow(() -> new AssertionError("no sink with uid sink-block-events"));
        assertEquals(List.of("Context blocks: phase 1 + partial attention"), sink.getInEdges().stream()
                .map(edge -> graph.getStreamNode(edge.getSourceId()).getOperatorName()).toList());
        assertEquals("block-events", StarflinkJob.jobOptions(cluster(), new String[0])
                .get(StarflinkOptions.BLOCK_EVENTS_TOPIC));
    }

    private static StreamNode source(StreamGraph graph) {
        return graph.getStreamNodes().stream().filter(n -> n.getOperatorName().contains("Kafka: documents"))
                .findFirst().orElseThrow();
    }

    /** What {@code main} builds on an environment of this configuration, up to the submission. */
    private static StreamGraph kafkaJobGraph(Configuration cluster) {
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment(cluster);
        StarflinkJob.defineClusterJob(env, new String[0]);
        return env.getStreamGraph();
    }
}
