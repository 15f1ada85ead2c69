package org.starflink.benchmarks;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.starflink.operators.cluster.LoopbackCluster;
import org.starflink.operators.model.ModelLocation;
import org.starflink.pipeline.ClusterSettings;
import org.starflink.pipeline.StarflinkJob;
import org.starflink.pipeline.StarflinkOptions;

/**
 * The production job ({@link StarflinkJob#defineKafkaJob}) on a local Flink cluster in this JVM, as the benchmarks
 * run it: RocksDB, incremental checkpoints every 10 s, the REST API on a port of its own, one slot per worker.
 */
final class LocalJobs {
    private LocalJobs() {
    }

    /** The model at {@code path} on the CPU backend, with the tokenizer a llama2.c checkpoint keeps next to it. */
    static ModelLocation cpuModel(Path path) {
        Path sibling = path.resolveSibling("tok512.bin");
        return new ModelLocation(path.toString(),
                path.toString().endsWith(".bin") && Files.exists(sibling) ? sibling.toString() : null, "cpu");
    }

    /** The job's settings on {@code topics}, at {@code workers} slots, its REST API on {@code restPort}. */
    static Configuration configuration(BenchTopics topics, int workers, int restPort, ModelLocation model,
                                       int blockSize) throws IOException {
        Configuration conf = new Configuration();
        conf.setString("rest.port", String.valueOf(restPort));
        conf.setString("rest.bind-port", String.valueOf(restPort));
        conf.setString("metrics.fetcher.update-interval", "500 ms");
        conf.setString("taskmanager.numberOfTaskSlots", String.valueOf(workers));
        LoopbackCluster.apply(conf);
        ClusterSettings.apply(conf, Files.createTempDirectory("starflink-bench-checkpoints-"), Duration.ofSeconds(10));
        topics.applyTo(conf);
        conf.set(StarflinkOptions.MODEL, model.model());
        if (model.tokenizer() != null) {
            conf.set(StarflinkOptions.TOKENIZER, model.tokenizer());
        }
        conf.set(StarflinkOptions.BLOCK_SIZE, blockSize);
        conf.set(StarflinkOptions.ALLOW_BEYOND_WINDOW, true);
        return conf;
    }

    /** Starts the job on {@code conf} at parallelism {@code workers}. */
    static JobClient start(Configuration conf, int workers, String name) throws Exception {
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment(conf);
        env.setParallelism(workers);
        env.setMaxParallelism(StarflinkJob.DEFAULT_MAX_PARALLELISM);
        StarflinkJob.defineKafkaJob(env, conf);
        return env.executeAsync(name);
    }
}
