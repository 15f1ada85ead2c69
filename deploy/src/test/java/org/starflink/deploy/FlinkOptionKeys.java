package org.starflink.deploy;

import java.lang.reflect.Field;
import java.lang.reflect.Modifier;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.configuration.FallbackKey;

/**
 * The keys Flink 2.2.1 declares as typed options (flink-core's *Options, RocksDB's, flink-yarn 2.2.0's
 * YarnConfigOptions), their fallback keys, and the key families that are prefixes by design; a key of a deployment
 * file outside them is a misspelling (Flink itself ignores unknown keys silently).
 */
final class FlinkOptionKeys {
    private static final List<String> OPTION_CLASSES = List.of(
            "org.apache.flink.configuration.CheckpointingOptions",
            "org.apache.flink.configuration.StateBackendOptions",
            "org.apache.flink.configuration.StateRecoveryOptions",
            "org.apache.flink.configuration.CoreOptions",
            "org.apache.flink.configuration.PipelineOptions",
            "org.apache.flink.configuration.ExecutionOptions",
            "org.apache.flink.configuration.DeploymentOptions",
            "org.apache.flink.configuration.HighAvailabilityOptions",
            "org.apache.flink.configuration.RestartStrategyOptions",
            "org.apache.flink.configuration.JobManagerOptions",
            "org.apache.flink.configuration.TaskManagerOptions",
            "org.apache.flink.configuration.RestOptions",
            "org.apache.flink.configuration.ExternalResourceOptions",
            "org.apache.flink.configuration.MetricOptions",
            "org.apache.flink.configuration.SecurityOptions",
            "org.apache.flink.configuration.ClusterOptions",
            "org.apache.flink.state.rocksdb.RocksDBOptions",
            "org.apache.flink.state.rocksdb.RocksDBConfigurableOptions",
            "org.apache.flink.yarn.configuration.YarnConfigOptions");

    /**
     * Families of keys built from a prefix: environment variables of the containers, one external resource's
     * settings (ExternalResourceOptions builds them from the resource name), the S3 file system plugin's, Kafka
     * client properties of the job (StarflinkOptions.KAFKA_PROPERTIES), and the CLI's internal keys.
     */
    static final List<String> PREFIXES = List.of("containerized.master.env.", "containerized.taskmanager.env.",
            "external-resource.gpu.", "s3.", "starflink.kafka.properties.", "$internal.");

    private FlinkOptionKeys() {
    }

    static Set<String> declared() {
        Set<String> keys = new TreeSet<>();
        for (String name : OPTION_CLASSES) {
            Class<?> type;
            try {
                type = Class.forName(name);
            } catch (ClassNotFoundException e) {
                throw new IllegalStateException("option class " + name + " is not on the test classpath", e);
            }
            for (Field field : type.getFields()) {
                if (Modifier.isStatic(field.getModifiers()) && ConfigOption.class.isAssignableFrom(field.getType())) {
                    try {
                        ConfigOption<?> option = (ConfigOption<?>) field.get(null);
                        keys.add(option.key());
                        for (FallbackKey fallback : option.fallbackKeys()) {
                            keys.add(fallback.getKey());
                        }
                    } catch (IllegalAccessException e) {
                        throw new IllegalStateException(e);
                    }
                }
            }
        }
        for (var option : DeploymentSettings.starflinkOptions()) {
            keys.add(option.key());
        }
        return keys;
    }

    /** The keys of {@code keys} that are neither declared nor of a prefix family. */
    static List<String> unknown(Iterable<String> keys) {
        Set<String> declared = declared();
        List<String> unknown = new ArrayList<>();
        for (String key : keys) {
            if (!declared.contains(key) && PREFIXES.stream().noneMatch(key::startsWith)) {
                unknown.add(key);
            }
        }
        return unknown;
    }
}
