package org.starflink.pipeline;

import java.nio.file.Path;
import java.time.Duration;
import org.apache.flink.configuration.Configuration;

/**
 * The Flink settings the job is built for, in one place: RocksDB keyed state with incremental checkpoints,
 * aligned checkpoints (the per-layer loop's protocol needs them), no network buffering delay (every layer of
 * every token crosses the network twice: with Flink's default 100 ms buffer timeout a layer would wait up to
 * 200 ms), and no Kryo fallback. A real cluster sets the same keys in its config.yaml (see README).
 */
public final class ClusterSettings {
    private ClusterSettings() {
    }

    public static Configuration apply(Configuration conf, Path checkpointDir, Duration checkpointInterval) {
        conf.setString("state.backend.type", "rocksdb");
        conf.setString("execution.checkpointing.storage", "filesystem");
        conf.setString("execution.checkpointing.dir", checkpointDir.toAbsolutePath().toUri().toString());
        conf.setString("execution.checkpointing.interval", checkpointInterval.toMillis() + " ms");
        conf.setString("execution.checkpointing.incremental", "true");
        conf.setString("execution.buffer-timeout.interval", "0 ms");
        conf.setString("pipeline.generic-types", "false");
        return conf;
    }
}
