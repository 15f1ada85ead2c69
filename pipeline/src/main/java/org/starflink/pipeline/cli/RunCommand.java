package org.starflink.pipeline.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.RestOptions;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.logging.log4j.Level;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.core.Appender;
import org.apache.logging.log4j.core.LoggerContext;
import org.apache.logging.log4j.core.appender.FileAppender;
import org.apache.logging.log4j.core.config.LoggerConfig;
import org.apache.logging.log4j.core.layout.PatternLayout;
import org.starflink.operators.cluster.LoopbackCluster;
import org.starflink.engine.EngineException;
import org.starflink.engine.backend.djl.LibtorchThreads;
import org.starflink.engine.model.Model;
import org.starflink.kafka.EmbeddedKafka;
import org.starflink.pipeline.ClusterSettings;
import org.starflink.pipeline.StarflinkJob;
import org.starflink.pipeline.StarflinkOptions;
import org.starflink.pipeline.client.StarflinkClient;
import org.starflink.schemas.AnswerToken;
import org.starflink.schemas.Question;
import org.starflink.schemas.Topics;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code starflink run}: the streaming job on a local Flink cluster in this process (Web UI on localhost), with
 * RocksDB state and checkpoints. Without {@code --bootstrap-servers} it also starts an embedded single-node
 * Kafka broker with the job's topics and, unless {@code --no-demo}, streams a demo document in and answers
 * questions about it live.
 *
 * <p>Durable: the broker's log and the checkpoints live in a data directory ({@link DataDirectory}); a clean stop
 * (Ctrl-C, SIGTERM) or a kill keeps them, and the next run on the same directory restores the newest checkpoint
 * and brings the broker back on the same address, so documents ingested before are still answerable.
 */
@Command(name = "run", mixinStandardHelpOptions = true,
        description = "Run the streaming job locally (embedded Kafka unless --bootstrap-servers is given); "
                + "its state survives a stop or a crash.")
final class RunCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Mixin
    ModelOptions modelOptions = new ModelOptions();

    @Option(names = "--bootstrap-servers", paramLabel = "HOST:PORT",
            description = "Attach to this Kafka instead of starting an embedded broker (its topics must exist).")
    String bootstrapServers;

    @Option(names = "--block-size", paramLabel = "B", defaultValue = "512",
            description = "Tokens per context block. Default: ${DEFAULT-VALUE}.")
    int blockSize;

    @Option(names = "--anchor-size", paramLabel = "A", description = "Default: the block size.")
    Integer anchorSize;

    @Option(names = "--parallelism", paramLabel = "P", defaultValue = "1")
    int parallelism;

    @Option(names = "--data-dir", paramLabel = "DIR", defaultValue = "${sys:user.home}/.starflink",
            description = "Broker log, checkpoints, ports and log file; reused by the next run. "
                    + "Default: ${DEFAULT-VALUE}.")
    Path dataDir;

    @Option(names = "--fresh", description = "Start empty: delete the data directory's broker data and checkpoints.")
    boolean fresh;

    @Option(names = "--web-port", paramLabel = "PORT", defaultValue = "8081", description = "Flink Web UI port.")
    int webPort;

    @Option(names = "-D", paramLabel = "KEY=VALUE", description = "Any Flink or starflink.* setting.")
    Map<String, String> settings = new LinkedHashMap<>();

    @Option(names = "--no-demo", description = "Do not stream the demo document and questions.")
    boolean noDemo;

    @Option(names = "--exit-after-demo", description = "Stop once the demo's answers are complete.")
    boolean exitAfterDemo;

    @Override
    public Integer call() throws Exception {
        if (blockSize < 1 || parallelism < 1 || (anchorSize != null && (anchorSize < 1 || anchorSize > blockSize))) {
            throw new StarflinkCli.UsageException("need --block-size >= 1, 1 <= --anchor-size <= block size, "
                    + "--parallelism >= 1");
        }
        if (!Files.exists(modelOptions.model)) {
            throw new EngineException("model not found: " + modelOptions.model);
        }
        // this JVM is the whole cluster: its task threads share the cores, so libtorch may use the ones they leave
        LibtorchThreads.ensure(Runtime.getRuntime().availableProcessors() / parallelism);
        PrintWriter out = spec.commandLine().getOut();
        DataDirectory data = openDataDirectory();
        Stopper stopper = new Stopper(data);
        try {
            if (bootstrapServers != null) {
                requireAttachedTopics();
            }
            logTo(data.logFile());
            String bootstrap = bootstrapServers;
            if (bootstrap == null) {
                stopper.broker = startBroker(data);
                bootstrap = stopper.broker.bootstrapServers();
                out.println("embedded Kafka broker: " + bootstrap + " (data in " + data.kafka() + ")");
            }
            Configuration conf = clusterConfiguration(bootstrap, data);
            restoreLatestCheckpoint(data, conf, out);
            StreamExecutionEnvironment env = StreamExecutionEnvironment.createLocalEnvironmentWithWebUI(conf);
            env.setParallelism(parallelism);
            env.setMaxParallelism(128);
            StarflinkJob.defineKafkaJob(env, conf);
            stopper.job = env.executeAsync("starflink");
            out.printf("job %s running; Flink Web UI: %s; log: %s%n", stopper.job.getJobID(),
                    webPort == 0 ? "on a random port (--web-port 0)" : "http://localhost:" + webPort, data.logFile());
            out.printf("  starflink ingest --bootstrap-servers %s --doc-id ID FILE...%n", bootstrap);
            out.printf("  starflink ask --bootstrap-servers %s --doc-id ID \"question\"%n", bootstrap);
            out.flush();
            Runtime.getRuntime().addShutdownHook(new Thread(stopper::stop, "starflink-stop"));
            if (!noDemo) {
                Demo.run(bootstrap, modelOptions.load(), out);
            }
            if (exitAfterDemo) {
                stopper.stop();
                return 0;
            }
            out.println("running; Ctrl-C to stop (state is kept in " + data.root() + ")");
            out.flush();
            new CountDownLatch(1).await(); // until the JVM is stopped; the shutdown hook stops everything
            return 0;
        } catch (Exception | Error e) {
            stopper.stop();
            throw e;
        }
    }

    /**
     * Takes the data directory (refused if another run holds it), and refuses to start when the Web UI's port is
     * taken, before anything else starts; a refused run leaves no new directory behind.
     */
    private DataDirectory openDataDirectory() throws IOException {
        boolean existed = Files.isDirectory(dataDir);
        DataDirectory data = DataDirectory.open(dataDir, fresh);
        try {
            requireFree(webPort, "the Flink Web UI's (--web-port picks another)");
            return data;
        } catch (StarflinkCli.Failure e) {
            data.close();
            if (!existed) {
                DataDirectory.deleteRecursively(data.root());
            }
            throw e;
        }
    }

    /** Attached to the user's Kafka: its topics must exist, or the job's sources would retry forever. */
    private void requireAttachedTopics() {
        Configuration topics = Configuration.fromMap(settings);
        try (StarflinkClient kafka = new StarflinkClient(bootstrapServers, StarflinkClient.TopicNames.defaults())) {
            kafka.requireTopics(List.of(topics.get(StarflinkOptions.DOCUMENTS_TOPIC),
                    topics.get(StarflinkOptions.QUESTIONS_TOPIC), topics.get(StarflinkOptions.ANSWERS_TOPIC),
                    topics.get(StarflinkOptions.REJECTED_TOPIC), topics.get(StarflinkOptions.BLOCK_EVENTS_TOPIC)));
        }
    }

    /** The job starts from the newest checkpoint any earlier run left in the data directory, if there is one. */
    private static void restoreLatestCheckpoint(DataDirectory data, Configuration conf, PrintWriter out) {
        Optional<Path> latest = data.latestCheckpoint();
        if (latest.isPresent()) {
            conf.setString("execution.state-recovery.path", latest.get().toUri().toString());
            data.pruneCheckpointsExcept(latest.get());
            out.println("restoring the job's state from " + latest.get());
        }
    }

    /** Stops what was started, once: the job first (its checkpoints stay), then the broker, then the lock. */
    private static final class Stopper {
        private final DataDirectory data;
        private final AtomicBoolean done = new AtomicBoolean();
        volatile JobClient job;
        volatile EmbeddedKafka broker;

        Stopper(DataDirectory data) {
            this.data = data;
        }

        void stop() {
            if (!done.compareAndSet(false, true)) {
                return;
            }
            try {
                if (job != null) {
                    job.cancel().get();
                }
            } catch (Exception e) {
                // already gone
            }
            if (broker != null) {
                broker.close();
            }
            data.close();
        }
    }

    private EmbeddedKafka startBroker(DataDirectory data) {
        int brokerPort = data.savedPort(DataDirectory.BROKER_PORT).orElse(0);
        int controllerPort = data.savedPort(DataDirectory.CONTROLLER_PORT).orElse(0);
        String kept = " (kept in " + data.root().resolve("run.properties") + " so that clients find the broker "
                + "again; stop what uses it, or start with --fresh)";
        if (brokerPort != 0) {
            requireFree(brokerPort, "the embedded broker's" + kept);
            requireFree(controllerPort, "the embedded broker's controller" + kept);
        }
        EmbeddedKafka broker = EmbeddedKafka.builder().dataDir(data.kafka()).ports(brokerPort, controllerPort)
                .topic(Topics.DOCUMENTS, 2).topic(Topics.QUESTIONS, 2).topic(Topics.ANSWERS, 2)
                .topic(Topics.REJECTED, 1).topic(Topics.BLOCK_EVENTS, 1).start();
        data.savePorts(broker.brokerPort(), broker.controllerPort());
        return broker;
    }

    /** Fails with one line when another program listens on {@code port} of this host. */
    private static void requireFree(int port, String whose) {
        if (port == 0) {
            return;
        }
        try (ServerSocket socket = new ServerSocket(port, 1, InetAddress.getLoopbackAddress())) {
            socket.setReuseAddress(true);
        } catch (IOException e) {
            throw new StarflinkCli.Failure(StarflinkCli.EXIT_CONFLICT, "port " + port + " is in use; it is "
                    + whose);
        }
    }

    /**
     * The job's log, at INFO, into the data directory, and named as Flink's {@code log.file} so that the Web UI's
     * JobManager and TaskManager log tabs show it. The console keeps showing warnings only.
     */
    private static void logTo(Path file) {
        System.setProperty("log.file", file.toString());
        LoggerContext context = (LoggerContext) LogManager.getContext(false);
        org.apache.logging.log4j.core.config.Configuration config = context.getConfiguration();
        FileAppender appender = FileAppender.newBuilder().setName("starflink-log-file")
                .withFileName(file.toString()).withAppend(true).setConfiguration(config)
                .setLayout(PatternLayout.newBuilder().withConfiguration(config)
                        .withPattern("%d{yyyy-MM-dd HH:mm:ss,SSS} %-5p %c{1} [%t] - %m%n").build())
                .build();
        appender.start();
        config.addAppender(appender);
        LoggerConfig root = config.getRootLogger();
        Level consoleLevel = root.getLevel();
        for (Appender console : List.copyOf(root.getAppenders().values())) { // they keep their level
            root.removeAppender(console.getName());
            root.addAppender(console, consoleLevel, null);
        }
        root.addAppender(appender, Level.INFO, null);
        root.setLevel(Level.INFO.isMoreSpecificThan(consoleLevel) ? consoleLevel : Level.INFO);
        context.updateLoggers();
    }

    private Configuration clusterConfiguration(String bootstrap, DataDirectory data) {
        Configuration conf = ClusterSettings.apply(new Configuration(), data.checkpoints(), Duration.ofSeconds(10));
        LoopbackCluster.apply(conf); // a single-machine tool: Web UI, RPC and data ports on 127.0.0.1 (-D to change)
        // a stop cancels the job: keep its checkpoints for the next run (a crash keeps them anyway)
        conf.setString("execution.checkpointing.externalized-checkpoint-retention", "RETAIN_ON_CANCELLATION");
        conf.set(RestOptions.PORT, webPort);
        conf.setString("web.log.path", data.logFile().toString());
        conf.setString("taskmanager.log.path", data.logFile().toString());
        conf.setString("state.backend.rocksdb.log.level", "HEADER_LEVEL"); // RocksDB logs next to it: keep them small
        conf.setString("metrics.fetcher.update-interval", "1 s"); // the Web UI sees fresh counters
        conf.setString("taskmanager.numberOfTaskSlots", String.valueOf(Math.max(parallelism, 1)));
        conf.set(StarflinkOptions.BOOTSTRAP_SERVERS, bootstrap);
        conf.set(StarflinkOptions.MODEL, modelOptions.model.toAbsolutePath().toString());
        if (modelOptions.tokenizer != null) {
            conf.set(StarflinkOptions.TOKENIZER, modelOptions.tokenizer.toAbsolutePath().toString());
        }
        conf.set(StarflinkOptions.BACKEND, modelOptions.backend);
        conf.set(StarflinkOptions.BLOCK_SIZE, blockSize);
        conf.set(StarflinkOptions.ANCHOR_SIZE, anchorSize == null ? 0 : anchorSize);
        settings.forEach(conf::setString);
        return conf;
    }

    /** The demo: documents streamed in, then a question about each answered live, next to the expected answer. */
    static final class Demo {
        private Demo() {
        }

        static void run(String bootstrap, Model model, PrintWriter out) {
            List<DemoDocument.Demo> demos = DemoDocument.create(model);
            try (StarflinkClient client = new StarflinkClient(bootstrap, StarflinkClient.TopicNames.defaults())) {
                for (DemoDocument.Demo demo : demos) {
                    int chunks = client.sendDocument(demo.docId(), 1, demo.text(), 1000, sent -> { });
                    out.printf("demo: streamed document '%s' (%d characters, %d chunks)%n", demo.docId(),
                            demo.text().length(), chunks);
                }
                for (DemoDocument.Demo demo : demos) {
                    out.printf("Q (%s): %s%nA: ", demo.docId(), demo.question().strip());
                    out.flush();
                    long[] sent = {System.nanoTime()};
                    long[] first = {0};
                    // waits for the whole document: a question is answered over the blocks present when admitted
                    AnswerToken last = client.ask(Question.newBuilder().setQuestionId(UUID.randomUUID().toString())
                                    .setDocId(demo.docId()).setText(demo.question()).setMaxNewTokens(24)
                                    .setWaitCompleteMs(Duration.ofMinutes(2).toMillis()).build(),
                            () -> sent[0] = System.nanoTime(), token -> {
                                if (first[0] == 0) {
                                    first[0] = System.nanoTime();
                                }
                                out.print(token.getText());
                                out.flush();
                            }, Duration.ofMinutes(5));
                    out.printf("%n   [%s; expected: %s; %s; time to first token %.0f ms]%n",
                            last.getError() != null ? "error: " + last.getError()
                                    : String.valueOf(last.getFinishReason()).toLowerCase(),
                            demo.answer(), AskCommand.describe(last.getCoverage()), (first[0] - sent[0]) / 1e6);
                }
            }
        }
    }
}
