package org.starflink.kafka;

import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import kafka.server.KafkaConfig;
import kafka.server.KafkaRaftServer;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.utils.Time;
import org.apache.kafka.metadata.storage.Formatter;
import org.apache.kafka.server.common.MetadataVersion;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A single-node Kafka (KRaft, combined broker + controller) inside this JVM: what {@code starflink run} uses when
 * no Kafka address is given, and what tests use.
 *
 * <p>It runs {@link KafkaRaftServer}, the class that {@code bin/kafka-server-start.sh} runs, after formatting the
 * data directory the way {@code kafka-storage.sh format} does. (The alternative, {@code KafkaClusterTestKit} from
 * {@code kafka-test-common-runtime}, is a test artifact that wraps the same classes; a product should not depend on
 * it.) Ports are picked free on 127.0.0.1; the broker is reachable from this host only.
 *
 * <pre>{@code
 * try (EmbeddedKafka kafka = EmbeddedKafka.builder().topic("questions", 4).start()) {
 *     String bootstrap = kafka.bootstrapServers();
 * }
 * }</pre>
 *
 * <p>A data directory given to the builder is kept (and reused on the next start: topics and offsets survive); a
 * directory the builder creates itself is deleted on {@link #close()}.
 */
public final class EmbeddedKafka implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(EmbeddedKafka.class);
    private static final int NODE_ID = 1;
    private static final String CONTROLLER_LISTENER = "CONTROLLER";

    private final KafkaRaftServer server;
    private final int brokerPort;
    private final int controllerPort;
    private final String bootstrapServers;
    private final Path dataDir;
    private final boolean deleteDataDirOnClose;
    private boolean closed;

    private EmbeddedKafka(KafkaRaftServer server, int brokerPort, int controllerPort, Path dataDir,
                          boolean deleteOnClose) {
        this.server = server;
        this.brokerPort = brokerPort;
        this.controllerPort = controllerPort;
        this.bootstrapServers = "127.0.0.1:" + brokerPort;
        this.dataDir = dataDir;
        this.deleteDataDirOnClose = deleteOnClose;
    }

    public static Builder builder() {
        return new Builder();
    }

    /** {@code host:port} for {@code bootstrap.servers}. */
    public String bootstrapServers() {
        return bootstrapServers;
    }

    public Path dataDir() {
        return dataDir;
    }

    /** The port clients connect to. */
    public int brokerPort() {
        return brokerPort;
    }

    /** The port of the KRaft controller (the broker's own metadata quorum). */
    public int controllerPort() {
        return controllerPort;
    }

    /** Creates topics (replication factor 1); existing ones are left as they are. */
    public void createTopics(Map<String, Integer> partitionsByTopic) {
        if (partitionsByTopic.isEmpty()) {
            return;
        }
        List<NewTopic> topics = new ArrayList<>();
        partitionsByTopic.forEach((name, partitions) -> topics.add(new NewTopic(name, partitions, (short) 1)));
        try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrapServers))) {
            admin.createTopics(topics).values().forEach((name, future) -> {
                try {
                    future.get(30, TimeUnit.SECONDS);
                } catch (ExecutionException e) {
                    if (!(e.getCause() instanceof TopicExistsException)) {
                        throw new IllegalStateException("cannot create topic " + name, e.getCause());
                    }
                } catch (Exception e) {
                    throw new IllegalStateException("cannot create topic " + name, e);
                }
            });
        }
    }

    /** Stops the broker and waits for it; deletes the data directory if the builder created it. Idempotent. */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            server.shutdown();
            server.awaitShutdown();
        } finally {
            if (deleteDataDirOnClose) {
                deleteRecursively(dataDir);
            }
        }
        LOG.info("Embedded Kafka at {} stopped", bootstrapServers);
    }

    public static final class Builder {
        private Path dataDir;
        private final Map<String, Integer> topics = new LinkedHashMap<>();
        private final Properties overrides = new Properties();
        private Duration startTimeout = Duration.ofSeconds(60);
        private int brokerPort;
        private int controllerPort;

        private Builder() {}

        /** Where the broker keeps its logs and metadata. Default: a temporary directory, deleted on close. */
        public Builder dataDir(Path dir) {
            this.dataDir = Objects.requireNonNull(dir);
            return this;
        }

        /** A topic to create at start (replication factor 1). */
        public Builder topic(String name, int partitions) {
            topics.put(name, partitions);
            return this;
        }

        /** Any broker setting, e.g. {@code log.retention.hours}; applied after the defaults. */
        public Builder brokerProperty(String key, String value) {
            overrides.setProperty(key, value);
            return this;
        }

        /**
         * Listen on these ports instead of free ones picked at start (0 = pick one): a broker restarted on a kept
         * data directory comes back on the address its clients know.
         */
        public Builder ports(int brokerPort, int controllerPort) {
            this.brokerPort = brokerPort;
            this.controllerPort = controllerPort;
            return this;
        }

        public Builder startTimeout(Duration timeout) {
            this.startTimeout = Objects.requireNonNull(timeout);
            return this;
        }

        /** Formats the data directory if needed, starts the broker, waits until it serves, creates the topics. */
        public EmbeddedKafka start() {
            long t0 = System.nanoTime();
            boolean ownDir = dataDir == null;
            Path dir;
            try {
                dir = ownDir ? Files.createTempDirectory("starflink-kafka-") : Files.createDirectories(dataDir);
            } catch (IOException e) {
                throw new UncheckedIOException("cannot create the Kafka data directory", e);
            }
            KafkaRaftServer server = null;
            try {
                int brokerPort = this.brokerPort != 0 ? this.brokerPort : freePort();
                int controllerPort = this.controllerPort != 0 ? this.controllerPort : freePort();
                KafkaConfig config = KafkaConfig.fromProps(brokerProperties(dir, brokerPort, controllerPort), false);
                format(config, dir);
                server = new KafkaRaftServer(config, Time.SYSTEM);
                server.startup();
                EmbeddedKafka kafka = new EmbeddedKafka(server, brokerPort, controllerPort, dir, ownDir);
                awaitReady(kafka.bootstrapServers, startTimeout);
                kafka.createTopics(topics);
                LOG.info("Embedded Kafka at {} (data {}) ready in {} ms, topics {}", kafka.bootstrapServers, dir,
                        (System.nanoTime() - t0) / 1_000_000, topics.keySet());
                return kafka;
            } catch (RuntimeException | Error e) {
                if (server != null) {
                    server.shutdown();
                    server.awaitShutdown();
                }
                if (ownDir) {
                    deleteRecursively(dir);
                }
                throw e;
            }
        }

        private Properties brokerProperties(Path dir, int brokerPort, int controllerPort) {
            Properties p = new Properties();
            p.setProperty("process.roles", "broker,controller");
            p.setProperty("node.id", String.valueOf(NODE_ID));
            p.setProperty("controller.quorum.voters", NODE_ID + "@127.0.0.1:" + controllerPort);
            p.setProperty("listeners",
                    "PLAINTEXT://127.0.0.1:" + brokerPort + "," + CONTROLLER_LISTENER + "://127.0.0.1:" + controllerPort);
            p.setProperty("advertised.listeners", "PLAINTEXT://127.0.0.1:" + brokerPort);
            p.setProperty("controller.listener.names", CONTROLLER_LISTENER);
            p.setProperty("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT," + CONTROLLER_LISTENER + ":PLAINTEXT");
            p.setProperty("inter.broker.listener.name", "PLAINTEXT");
            p.setProperty("log.dirs", dir.toAbsolutePath().toString());
            // one node: internal topics cannot have more replicas than that
            p.setProperty("offsets.topic.replication.factor", "1");
            p.setProperty("offsets.topic.num.partitions", "4");
            p.setProperty("transaction.state.log.replication.factor", "1");
            p.setProperty("transaction.state.log.min.isr", "1");
            p.setProperty("transaction.state.log.num.partitions", "4");
            p.setProperty("share.coordinator.state.topic.replication.factor", "1");
            p.setProperty("share.coordinator.state.topic.min.isr", "1");
            p.setProperty("group.initial.rebalance.delay.ms", "0");
            // topics are created explicitly; a typo in a topic name should fail, not create a topic
            p.setProperty("auto.create.topics.enable", "false");
            p.putAll(overrides);
            return p;
        }
    }

    /** What {@code kafka-storage.sh format} does, once: an already formatted directory keeps its cluster id. */
    private static void format(KafkaConfig config, Path dir) {
        if (Files.exists(dir.resolve("meta.properties"))) {
            return;
        }
        try {
            new Formatter()
                    .setPrintStream(new PrintStream(PrintStream.nullOutputStream()))
                    .setNodeId(NODE_ID)
                    .setClusterId(Uuid.randomUuid().toString())
                    .setControllerListenerName(CONTROLLER_LISTENER)
                    .setMetadataLogDirectory(config.metadataLogDir())
                    .setDirectories(List.of(dir.toAbsolutePath().toString()))
                    .setReleaseVersion(MetadataVersion.LATEST_PRODUCTION)
                    .run();
        } catch (Exception e) {
            throw new IllegalStateException("cannot format Kafka data directory " + dir, e);
        }
    }

    private static void awaitReady(String bootstrap, Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap))) {
            while (true) {
                try {
                    if (!admin.describeCluster().nodes().get(1, TimeUnit.SECONDS).isEmpty()) {
                        // The group coordinator's topic (__consumer_offsets) is created on first use; asking for
                        // a group's offsets now means the first consumer group does not retry commits.
                        // One request, retried by the admin client itself until the coordinator answers.
                        admin.listConsumerGroupOffsets("starflink-warm-up").partitionsToOffsetAndMetadata()
                                .get(Math.max(1, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
                        return;
                    }
                } catch (Exception notYet) {
                    // broker still starting
                }
                if (System.nanoTime() > deadline) {
                    throw new IllegalStateException("embedded Kafka at " + bootstrap + " not ready after " + timeout);
                }
                try {
                    Thread.sleep(50);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new IllegalStateException("interrupted while waiting for Kafka", e);
                }
            }
        }
    }

    /**
     * A port that was free a moment ago. Kafka's KRaft controller needs its port in its configuration before it
     * binds, so "bind to 0 and ask" does not work here; the small race with other processes is accepted.
     */
    private static int freePort() {
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            socket.setReuseAddress(true);
            return socket.getLocalPort();
        } catch (IOException e) {
            throw new UncheckedIOException("no free port", e);
        }
    }

    private static void deleteRecursively(Path dir) {
        if (!Files.exists(dir)) {
            return;
        }
        try (Stream<Path> paths = Files.walk(dir)) {
            paths.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException e) {
            LOG.warn("could not delete {}", dir, e);
        }
    }
}
