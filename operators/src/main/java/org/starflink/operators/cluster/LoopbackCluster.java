package org.starflink.operators.cluster;

import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.JobManagerOptions;
import org.apache.flink.configuration.RestOptions;
import org.apache.flink.configuration.TaskManagerOptions;

/**
 * A Flink cluster inside one JVM on this machine (`starflink run`, the benchmarks, the tests' MiniClusters) that
 * listens on loopback only: REST endpoint and Web UI, RPC, blob server, and the TaskManagers' data and RPC ports.
 * Unset, Flink binds several of them to every interface.
 */
public final class LoopbackCluster {
    public static final String LOOPBACK = "127.0.0.1";

    private LoopbackCluster() {
    }

    /** {@code conf} with every address of the cluster on {@link #LOOPBACK}; returns {@code conf}. */
    public static Configuration apply(Configuration conf) {
        conf.set(RestOptions.BIND_ADDRESS, LOOPBACK);
        conf.set(RestOptions.ADDRESS, LOOPBACK);
        conf.set(JobManagerOptions.BIND_HOST, LOOPBACK);
        conf.set(JobManagerOptions.ADDRESS, LOOPBACK);
        conf.set(TaskManagerOptions.BIND_HOST, LOOPBACK);
        conf.set(TaskManagerOptions.HOST, LOOPBACK);
        return conf;
    }
}
