package org.starflink.operators.cluster;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.util.List;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.runtime.minicluster.MiniCluster;
import org.apache.flink.runtime.minicluster.MiniClusterConfiguration;
import org.apache.flink.runtime.testutils.MiniClusterResource;
import org.apache.flink.runtime.testutils.MiniClusterResourceConfiguration;
import org.junit.jupiter.api.Test;
import org.starflink.kafka.EmbeddedKafka;

/**
 * What the tests start listens on loopback only: a MiniCluster configured by {@link LoopbackCluster} (as every
 * test cluster is) and the embedded Kafka broker, read from this process's sockets in /proc. Negative control: the
 * same MiniCluster without it listens on every interface.
 */
class LoopbackClusterITCase {

    @Test
    void aLoopbackMiniClusterAndTheEmbeddedBrokerListenOnLoopbackOnly() throws Exception {
        assumeTrue(ListeningSockets.available(), "no /proc (not Linux)");
        List<ListeningSockets.Listener> before = ListeningSockets.ofThisProcess();
        try (EmbeddedKafka kafka = EmbeddedKafka.builder().topic("t", 1).start();
             MiniCluster cluster = start(LoopbackCluster.apply(new Configuration()))) {
            List<ListeningSockets.Listener> now = ListeningSockets.ofThisProcess();
            now.removeAll(before);
            assertTrue(now.size() >= 3, "the broker, its controller and the cluster's REST endpoint at least: " + now);
            for (ListeningSockets.Listener listener : now) {
                assertTrue(listener.loopback(), "listens beyond loopback: " + listener + " of " + now);
            }
            int rest = cluster.getRestAddress().get().getPort();
            assertEquals(1, now.stream().filter(l -> l.port() == rest).count(), "REST port " + rest + " in " + now);
        }
    }

    @Test
    void theTestsMiniClusterResourceWithItListensOnLoopbackOnly() throws Exception {
        // what MiniClusterExtension (every ITCase's cluster) starts
        assumeTrue(ListeningSockets.available(), "no /proc (not Linux)");
        List<ListeningSockets.Listener> before = ListeningSockets.ofThisProcess();
        MiniClusterResource resource = new MiniClusterResource(new MiniClusterResourceConfiguration.Builder()
                .setConfiguration(LoopbackCluster.apply(new Configuration()))
                .setNumberTaskManagers(1).setNumberSlotsPerTaskManager(2).build());
        resource.before();
        try {
            // a job on it: the TaskManager's shuffle and state open more
            org.apache.flink.streaming.api.environment.StreamExecutionEnvironment env =
                    new org.apache.flink.streaming.util.TestStreamEnvironment(resource.getMiniCluster(), 2);
            env.fromData(1, 2, 3, 4).keyBy(i -> i % 2).map(i -> i + 1).returns(Integer.class)
                    .sinkTo(new org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink<>());
            env.execute("loopback");
            List<ListeningSockets.Listener> now = ListeningSockets.ofThisProcess();
            now.removeAll(before);
            assertFalse(now.isEmpty());
            for (ListeningSockets.Listener listener : now) {
                assertTrue(listener.loopback(), "listens beyond loopback: " + listener + " of " + now);
            }
        } finally {
            resource.after();
        }
    }

    @Test
    void withoutItAMiniClusterListensOnEveryInterface() throws Exception {
        assumeTrue(ListeningSockets.available(), "no /proc (not Linux)");
        List<ListeningSockets.Listener> before = ListeningSockets.ofThisProcess();
        try (MiniCluster cluster = start(new Configuration())) {
            List<ListeningSockets.Listener> now = ListeningSockets.ofThisProcess();
            now.removeAll(before);
            assertFalse(now.stream().allMatch(ListeningSockets.Listener::loopback), now.toString());
        }
    }

    @Test
    void procAddressesAreDecoded() {
        assertEquals(new ListeningSockets.Listener("127.0.0.1", 8081, true), ListeningSockets.listener("0100007F", 8081));
        assertEquals(new ListeningSockets.Listener("0.0.0.0", 1, false), ListeningSockets.listener("00000000", 1));
        assertTrue(ListeningSockets.listener("0000000000000000FFFF00000100007F", 1).loopback());
        assertTrue(ListeningSockets.listener("00000000000000000000000001000000", 1).loopback()); // ::1
        assertFalse(ListeningSockets.listener("00000000000000000000000000000000", 1).loopback()); // ::
    }

    private static MiniCluster start(Configuration conf) throws Exception {
        MiniCluster cluster = new MiniCluster(new MiniClusterConfiguration.Builder().setConfiguration(conf)
                .setNumTaskManagers(1).setNumSlotsPerTaskManager(1).build());
        cluster.start();
        return cluster;
    }
}
