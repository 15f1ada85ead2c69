package org.starflink.pipeline;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.apache.flink.configuration.CheckpointingOptions;
import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.ExecutionOptions;
import org.apache.flink.configuration.ExternalizedCheckpointRetention;
import org.apache.flink.configuration.PipelineOptions;
import org.apache.flink.configuration.ReadableConfig;
import org.apache.flink.configuration.StateBackendOptions;

/**
 * The Flink settings the job is built for, in one place: RocksDB keyed state with incremental checkpoints,
 * aligned checkpoints (the per-layer loop's protocol needs them), no network buffering delay (every layer of
 * every token crosses the network twice: with Flink's default 100 ms buffer timeout a layer would wait up to
 * 200 ms), no Kryo fallback and a fixed maximum parallelism (the loop's key groups). The local run and the tests
 * apply them ({@link #apply}); a cluster sets them in its configuration (deploy/conf/config.yaml, the
 * FlinkDeployments' flinkConfiguration), and deploy/'s tests check those files against {@link #all()}.
 */
public final class ClusterSettings {
    private ClusterSettings() {
    }

    /** One setting: a typed Flink option and the value the job needs. */
    public record Setting<T>(ConfigOption<T> option, T value) {
        void setIn(Configuration conf) {
            conf.set(option, value);
        }

        /** Whether {@code conf} sets this option explicitly to this value. */
        public boolean isSetIn(ReadableConfig conf) {
            return conf.getOptional(option).map(value::equals).orElse(false);
        }
    }

    /** What the job sets itself when the configuration leaves it unset ({@link StarflinkJob#settingsTheJobNeeds}). */
    public static final List<Setting<?>> JOB_DEFAULTS = List.of(
            new Setting<>(PipelineOptions.MAX_PARALLELISM, StarflinkJob.DEFAULT_MAX_PARALLELISM),
            new Setting<>(ExecutionOptions.BUFFER_TIMEOUT, Duration.ZERO),
            new Setting<>(PipelineOptions.GENERIC_TYPES, false));

    /**
     * What the cluster's configuration must say, since the job does not set it (unaligned checkpoints are also
     * refused at submission, {@link StarflinkJob#jobOptions}).
     */
    public static final List<Setting<?>> CLUSTER = List.of(
            new Setting<>(StateBackendOptions.STATE_BACKEND, "rocksdb"),
            new Setting<>(CheckpointingOptions.CHECKPOINT_STORAGE, "filesystem"),
            new Setting<>(CheckpointingOptions.INCREMENTAL_CHECKPOINTS, true),
            new Setting<>(CheckpointingOptions.ENABLE_UNALIGNED, false),
            new Setting<>(CheckpointingOptions.EXTERNALIZED_CHECKPOINT_RETENTION,
                    ExternalizedCheckpointRetention.RETAIN_ON_CANCELLATION));

    /** Every setting a deployment's configuration should state: {@link #CLUSTER} and {@link #JOB_DEFAULTS}. */
    public static List<Setting<?>> all() {
        List<Setting<?>> all = new ArrayList<>(CLUSTER);
        all.addAll(JOB_DEFAULTS);
        return all;
    }

    /** Every setting, with checkpoints every {@code checkpointInterval} under {@code checkpointDir}. */
    public static Configuration apply(Configuration conf, Path checkpointDir, Duration checkpointInterval) {
        all().forEach(setting -> setting.setIn(conf));
        conf.set(CheckpointingOptions.CHECKPOINTS_DIRECTORY, checkpointDir.toAbsolutePath().toUri().toString());
        conf.set(CheckpointingOptions.CHECKPOINTING_INTERVAL, checkpointInterval);
        return conf;
    }

    /** {@code options} with every {@link #JOB_DEFAULTS} setting it leaves unset. */
    static Configuration withJobDefaults(Configuration options) {
        Configuration settings = new Configuration(options);
        for (Setting<?> setting : JOB_DEFAULTS) {
            if (options.getOptional(setting.option()).isEmpty()) {
                setting.setIn(settings);
            }
        }
        return settings;
    }
}
