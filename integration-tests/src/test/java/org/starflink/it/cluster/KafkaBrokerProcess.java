package org.starflink.it.cluster;

import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.metadata.storage.Formatter;
import org.apache.kafka.server.common.MetadataVersion;

/**
 * A single-node KRaft Kafka broker (combined broker + controller) as its own JVM: {@code kafka.Kafka
 * server.properties}, what {@code bin/kafka-server-start.sh} runs, on the Kafka jars of the test classpath. Its
 * data directory is formatted once, as {@code kafka-storage.sh format} does; the ports are picked once, so that
 * {@link #kill} (kill -9) and {@link #start} bring it back on the same address with the same data.
 * Listens on 127.0.0.1 only.
 */
public final class KafkaBrokerProcess implements AutoCloseable {
    private static final int NODE_ID = 1;

    private final Path dir;
    private final Path dataDir;
    private final Path properties;
    private final int brokerPort;
    private final int controllerPort;
    private ManagedProcess process;
    private int starts;

    public KafkaBrokerProcess(Path dir) {
        this.dir = dir.toAbsolutePath();
        this.dataDir = this.dir.resolve("data");
        this.properties = this.dir.resolve("server.properties");
        this.brokerPort = freePort();
        this.controllerPort = freePort();
    }

    public String bootstrapServers() {
        return "127.0.0.1:" + brokerPort;
    }

    /** Starts the broker (formatting its data directory the first time) and waits until it serves requests. */
    public synchronized KafkaBrokerProcess start() {
        if (process != null && process.isAlive()) {
            throw new IllegalStateException("the broker is already running: " + process);
        }
        long t0 = System.nanoTime();
        try {
            Files.createDirectories(dataDir);
            writeProperties();
            Path log4j = dir.resolve("log4j2.properties");
            Files.writeString(log4j, String.join("\n",
                    "rootLogger.level = INFO",
                    "rootLogger.appenderRef.console.ref = console",
                    "appender.console.name = console",
                    "appender.console.type = CONSOLE",
                    "appender.console.layout.type = PatternLayout",
                    "appender.console.layout.pattern = %d{HH:mm:ss,SSS} %-5p %c{1} %m%n",
                    "logger.kafka.name = kafka",
                    "logger.kafka.level = INFO",
                    "logger.apache.name = org.apache.kafka",
                    "logger.apache.level = WARN", ""));
            format();
            List<Path> classpath = new ArrayList<>();
            for (String entry : System.getProperty("java.class.path").split(":")) {
                classpath.add(Path.of(entry));
            }
            process = ManagedProcess.start("kafka-broker", classpath, "kafka.Kafka",
                    List.of("-Xmx512m", "-Xms128m", "-XX:+UseG1GC", "-Dlog4j2.configurationFile=" + log4j.toUri(),
                            "-Dlog4j.configurationFile=" + log4j.toUri()),
                    List.of(properties.toString()), Map.of(), dir.resolve("broker.log"));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot prepare the broker's directory " + dir, e);
        }
        awaitReady(Duration.ofMinutes(2));
        starts++;
        System.out.printf("kafka broker %s (pid %d) ready in %d ms (start %d)%n", bootstrapServers(), process.pid(),
                (System.nanoTime() - t0) / 1_000_000, starts);
        return this;
    }

    /** kill -9 of the broker's JVM; its data directory stays for the next {@link #start}. */
    public synchronized void kill() {
        if (process != null) {
            process.kill();
        }
    }

    /**
     * For a negative control: deletes the stopped broker's data directory (every topic, offset and its cluster
     * metadata), as a broker whose disk was lost; the next {@link #start} formats a new one.
     */
    public synchronized void loseItsData() {
        if (isAlive()) {
            throw new IllegalStateException("the broker is running: " + process);
        }
        try (var files = Files.walk(dataDir)) {
            for (Path file : files.sorted(java.util.Comparator.reverseOrder()).toList()) {
                Files.delete(file);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot delete " + dataDir, e);
        }
    }

    public boolean isAlive() {
        return process != null && process.isAlive();
    }

    public void createTopics(Map<String, Integer> partitionsByTopic) {
        try (Admin admin = admin()) {
            List<NewTopic> topics = new ArrayList<>();
            partitionsByTopic.forEach((name, partitions) -> topics.add(new NewTopic(name, partitions, (short) 1)));
            admin.createTopics(topics).all().get(1, TimeUnit.MINUTES);
        } catch (Exception e) {
            throw new IllegalStateException("cannot create topics " + partitionsByTopic.keySet() + " on "
                    + bootstrapServers(), e);
        }
    }

    private Admin admin() {
        return Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrapServers()));
    }

    private void writeProperties() throws IOException {
        Properties p = new Properties();
        p.setProperty("process.roles", "broker,controller");
        p.setProperty("node.id", String.valueOf(NODE_ID));
        p.setProperty("controller.quorum.voters", NODE_ID + "@127.0.0.1:" + controllerPort);
        p.setProperty("listeners", "PLAINTEXT://127.0.0.1:" + brokerPort + ",CONTROLLER://127.0.0.1:" + controllerPort);
        p.setProperty("advertised.listeners", "PLAINTEXT://127.0.0.1:" + brokerPort);
        p.setProperty("controller.listener.names", "CONTROLLER");
        p.setProperty("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT");
        p.setProperty("inter.broker.listener.name", "PLAINTEXT");
        p.setProperty("log.dirs", dataDir.toString());
        p.setProperty("offsets.topic.replication.factor", "1");
        p.setProperty("offsets.topic.num.partitions", "4");
        p.setProperty("transaction.state.log.replication.factor", "1");
        p.setProperty("transaction.state.log.min.isr", "1");
        p.setProperty("transaction.state.log.num.partitions", "4");
        p.setProperty("share.coordinator.state.topic.replication.factor", "1");
        p.setProperty("share.coordinator.state.topic.min.isr", "1");
        p.setProperty("group.initial.rebalance.delay.ms", "0");
        p.setProperty("auto.create.topics.enable", "false");
        try (var out = Files.newBufferedWriter(properties)) {
            p.store(out, "written by KafkaBrokerProcess");
        }
    }

    /** What {@code kafka-storage.sh format} does, once: a formatted directory keeps its cluster id. */
    private void format() {
        if (Files.exists(dataDir.resolve("meta.properties"))) {
            return;
        }
        try {
            new Formatter()
                    .setPrintStream(new PrintStream(PrintStream.nullOutputStream()))
                    .setNodeId(NODE_ID)
                    .setClusterId(Uuid.randomUuid().toString())
                    .setControllerListenerName("CONTROLLER")
                    .setMetadataLogDirectory(dataDir.toString())
                    .setDirectories(List.of(dataDir.toString()))
                    .setReleaseVersion(MetadataVersion.LATEST_PRODUCTION)
                    .run();
        } catch (Exception e) {
            throw new IllegalStateException("cannot format the broker's data directory " + dataDir, e);
        }
    }

    private void awaitReady(Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        try (Admin admin = admin()) {
            while (true) {
                process.assertAlive();
                try {
                    if (!admin.describeCluster().nodes().get(1, TimeUnit.SECONDS).isEmpty()) {
                        // the group coordinator answers: the job's offset commits will not fail and retry
                        admin.listConsumerGroupOffsets("starflink-warm-up").partitionsToOffsetAndMetadata()
                                .get(30, TimeUnit.SECONDS);
                        return;
                    }
                } catch (Exception notYet) {
                    // still starting
                }
                if (System.nanoTime() > deadline) {
                    throw new IllegalStateException("the Kafka broker at " + bootstrapServers() + " is not ready after "
                            + timeout + "; the end of its log:\n" + process.logTail(40));
                }
                sleep(200);
            }
        }
    }

    public static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted", e);
        }
    }

    /** A port free a moment ago (KRaft needs its ports in its configuration before binding). */
    static int freePort() {
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            socket.setReuseAddress(true);
            return socket.getLocalPort();
        } catch (IOException e) {
            throw new UncheckedIOException("no free port", e);
        }
    }

    @Override
    public void close() {
        kill();
    }
}
