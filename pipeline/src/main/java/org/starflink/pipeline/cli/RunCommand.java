package org.starflink.pipeline.cli;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.RestOptions;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.starflink.kafka.EmbeddedKafka;
import org.starflink.pipeline.ClusterSettings;
import org.starflink.pipeline.StarflinkJob;
import org.starflink.pipeline.StarflinkOptions;
import org.starflink.pipeline.client.StarflinkClient;
import org.starflink.schemas.AnswerToken;
import org.starflink.schemas.Question;
import org.starflink.schemas.Topics;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/**
 * {@code starflink run}: the streaming job on a local Flink cluster in this process (Web UI on localhost), with
 * RocksDB state and checkpoints. Without {@code --bootstrap-servers} it also starts an embedded single-node
 * Kafka broker with the job's topics and, unless {@code --no-demo}, streams a demo document in and answers
 * questions about it live.
 */
@Command(name = "run", mixinStandardHelpOptions = true,
        description = "Run the streaming job locally (embedded Kafka unless --bootstrap-servers is given).")
final class RunCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--bootstrap-servers", paramLabel = "HOST:PORT",
            description = "Attach to this Kafka instead of starting an embedded broker.")
    String bootstrapServers;

    @Option(names = "--model", paramLabel = "DIR|FILE",
            defaultValue = "${sys:starflink.default.model:-models/starflink-synth-14m}",
            description = "Default: ${DEFAULT-VALUE}.")
    String model;

    @Option(names = "--tokenizer", paramLabel = "FILE")
    String tokenizer;

    @Option(names = "--block-size", paramLabel = "B", defaultValue = "512",
            description = "Tokens per context block. Default: ${DEFAULT-VALUE}.")
    int blockSize;

    @Option(names = "--anchor-size", paramLabel = "A", description = "Default: the block size.")
    Integer anchorSize;

    @Option(names = "--parallelism", paramLabel = "P", defaultValue = "1")
    int parallelism;

    @Option(names = "--checkpoint-dir", paramLabel = "DIR", defaultValue = "target/starflink-checkpoints")
    Path checkpointDir;

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
        if (!Files.exists(Path.of(model))) {
            throw new org.starflink.engine.EngineException("model not found: " + model);
        }
        var out = spec.commandLine().getOut();
        EmbeddedKafka embedded = null;
        String bootstrap = bootstrapServers;
        if (bootstrap == null) {
            embedded = EmbeddedKafka.builder().topic(Topics.DOCUMENTS, 2).topic(Topics.QUESTIONS, 2)
                    .topic(Topics.ANSWERS, 2).topic(Topics.REJECTED, 1).start();
            bootstrap = embedded.bootstrapServers();
            out.println("embedded Kafka broker: " + bootstrap);
        }
        Configuration conf = clusterConfiguration(bootstrap);
        StreamExecutionEnvironment env = StreamExecutionEnvironment.createLocalEnvironmentWithWebUI(conf);
        env.setParallelism(parallelism);
        env.setMaxParallelism(128);
        StarflinkJob.defineKafkaJob(env, conf);
        JobClient job = env.executeAsync("starflink");
        out.printf("job %s running; Flink Web UI: %s%n", job.getJobID(),
                webPort == 0 ? "on a random port (--web-port 0)" : "http://localhost:" + webPort);
        out.printf("  starflink ingest --bootstrap-servers %s --doc-id ID FILE...%n", bootstrap);
        out.printf("  starflink ask --bootstrap-servers %s --doc-id ID \"question\"%n", bootstrap);
        EmbeddedKafka broker = embedded;
        Runnable shutdown = new Runnable() {
            private final java.util.concurrent.atomic.AtomicBoolean done = new java.util.concurrent.atomic.AtomicBoolean();

            @Override
            public void run() { // once: the job first, then the broker it reads from
                if (done.compareAndSet(false, true)) {
                    try {
                        job.cancel().get();
                    } catch (Exception e) {
                        // already gone
                    }
                    if (broker != null) {
                        broker.close();
                    }
                }
            }
        };
        Runtime.getRuntime().addShutdownHook(new Thread(shutdown));
        if (!noDemo) {
            Demo.run(bootstrap, org.starflink.engine.checkpoint.ModelRegistry.model(Path.of(model),
                    tokenizer == null ? null : Path.of(tokenizer)), out);
        }
        if (exitAfterDemo) {
            shutdown.run();
            return 0;
        }
        out.println("running; Ctrl-C to stop");
        new CountDownLatch(1).await(); // until the JVM is stopped; the shutdown hook cleans up
        return 0;
    }

    private Configuration clusterConfiguration(String bootstrap) {
        Configuration conf = ClusterSettings.apply(new Configuration(), checkpointDir, Duration.ofSeconds(10));
        conf.set(RestOptions.PORT, webPort);
        conf.setString("metrics.fetcher.update-interval", "1 s"); // the Web UI and `ingest` see fresh counters
        conf.setString("taskmanager.numberOfTaskSlots", String.valueOf(Math.max(parallelism, 1)));
        conf.set(StarflinkOptions.BOOTSTRAP_SERVERS, bootstrap);
        conf.set(StarflinkOptions.MODEL, model);
        if (tokenizer != null) {
            conf.set(StarflinkOptions.TOKENIZER, tokenizer);
        }
        conf.set(StarflinkOptions.BLOCK_SIZE, blockSize);
        conf.set(StarflinkOptions.ANCHOR_SIZE, anchorSize == null ? 0 : anchorSize);
        settings.forEach(conf::setString);
        return conf;
    }

    /** The demo: documents streamed in, then a question about each answered live, next to the expected answer. */
    static final class Demo {
        private Demo() {
        }

        static void run(String bootstrap, org.starflink.engine.model.Model model, java.io.PrintWriter out)
                throws Exception {
            List<DemoDocument.Demo> demos = DemoDocument.create(model);
            try (StarflinkClient client = new StarflinkClient(bootstrap, StarflinkClient.TopicNames.defaults())) {
                for (DemoDocument.Demo demo : demos) {
                    int chunks = client.sendDocument(demo.docId(), 1, demo.text(), 1000, sent -> { });
                    out.printf("demo: streamed document '%s' (%d characters, %d chunks)%n", demo.docId(),
                            demo.text().length(), chunks);
                }
                Thread.sleep(3000); // a question is answered over the blocks that exist when it arrives
                for (DemoDocument.Demo demo : demos) {
                    out.printf("Q (%s): %s%nA: ", demo.docId(), demo.question().strip());
                    out.flush();
                    long sent = System.nanoTime();
                    long[] first = {0};
                    AnswerToken last = client.ask(Question.newBuilder().setQuestionId(UUID.randomUUID().toString())
                                    .setDocId(demo.docId()).setText(demo.question()).setMaxNewTokens(24).build(),
                            token -> {
                                if (first[0] == 0) {
                                    first[0] = System.nanoTime();
                                }
                                out.print(token.getText());
                                out.flush();
                            }, Duration.ofMinutes(5));
                    out.printf("%n   [%s; expected: %s; time to first token %.0f ms]%n",
                            last.getError() != null ? "error: " + last.getError()
                                    : String.valueOf(last.getFinishReason()).toLowerCase(),
                            demo.answer(), (first[0] - sent) / 1e6);
                }
            }
        }
    }
}
