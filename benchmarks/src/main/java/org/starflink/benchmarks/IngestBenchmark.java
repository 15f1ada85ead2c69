package org.starflink.benchmarks;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.starflink.engine.backend.Backend;
import org.starflink.engine.backend.djl.LibtorchThreads;
import org.starflink.engine.forward.Transformer;
import org.starflink.engine.model.Model;
import org.starflink.engine.star.BlockLayout;
import org.starflink.engine.star.EncodedContext;
import org.starflink.engine.star.LongContextGenerator;
import org.starflink.kafka.EmbeddedKafka;
import org.starflink.operators.model.ModelLocation;
import org.starflink.pipeline.ClusterSettings;
import org.starflink.operators.cluster.LoopbackCluster;
import org.starflink.pipeline.StarflinkJob;
import org.starflink.pipeline.StarflinkOptions;
import org.starflink.pipeline.client.StarflinkClient;
import org.starflink.schemas.AnswerToken;

/**
 * Phase 1 of one document streamed into the job in chunks of C characters, against the single-process Star
 * phase 1 of the same tokens, for the job's two ways of tokenizing a streaming document: at exact cuts (the
 * default) and re-tokenizing the whole text on every chunk (before exact cuts; {@code starflink.document.exact-cuts
 * false}). Side by side in one run: the engine first, then one job per way, each document of each chunk size in the
 * same job after a warm-up document.
 *
 * <p>Job phase 1 = first chunk sent -> the answer to a one-token probe question that waits for the document to be
 * complete ({@link StarflinkClient#awaitDocument}: a question is answered once every block it covers is encoded),
 * minus the same probe's time on the already encoded document (the question's own pass and Kafka in and out).
 * Engine phase 1 = tokenizing the whole text once + {@link LongContextGenerator#encode} of its tokens with the same
 * backend and blocks, measured right before each job cell.
 *
 * <p>Usage: IngestBenchmark [--model DIR] [--tokens N (16384)] [--chunks 50,200,2000] [--block-size B (2048)]
 * [--ways exact,whole]
 */
public final class IngestBenchmark {
    private IngestBenchmark() {
    }

    private record Cell(String way, int chunkChars, int chunks, double jobSeconds, double probeSeconds,
                        double engineSeconds) {
    }

    /**
     * The single-process baseline: tokenize the whole text once, then {@link LongContextGenerator#encode}. Measured
     * right before each job cell, so that both see the same machine (it is shared).
     */
    private static final class EnginePhaseOne {
        private final LongContextGenerator generator;
        private final String text;
        private final BlockLayout layout;
        private final int tokens;

        EnginePhaseOne(LongContextGenerator generator, String text, BlockLayout layout) {
            this.generator = generator;
            this.text = text;
            this.layout = layout;
            this.tokens = generator.contextTokens(text).length;
        }

        double measure() {
            long start = System.nanoTime();
            int[] context = generator.contextTokens(text);
            try (EncodedContext ignored = generator.encode(context, layout)) {
                return (System.nanoTime() - start) / 1e9;
            }
        }
    }

    public static void main(String[] args) throws Exception {
        // as `starflink run` at parallelism 1 (RunCommand): libtorch gets the cores the one task thread leaves
        LibtorchThreads.ensure(Runtime.getRuntime().availableProcessors());
        Path modelDir = Path.of(BenchArgs.option(args, "--model", Path.of(System.getProperty("starflink.project.dir", "."),
                "models/starflink-synth-14m").toString())).toAbsolutePath();
        int targetTokens = Integer.parseInt(BenchArgs.option(args, "--tokens", "16384"));
        List<Integer> chunkSizes = new ArrayList<>();
        for (String c : BenchArgs.option(args, "--chunks", "50,200,2000").split(",")) {
            chunkSizes.add(Integer.parseInt(c.trim()));
        }
        int blockSize = Integer.parseInt(BenchArgs.option(args, "--block-size", "2048"));
        List<String> ways = List.of(BenchArgs.option(args, "--ways", "exact,whole").split(","));

        ModelLocation location = new ModelLocation(modelDir.toString(), null, "cpu");
        Model model = location.load();
        String story = Files.readString(Path.of(System.getProperty("starflink.shared.dir", "../shared"),
                "models/stories260K/reference/greedy_t0_256steps_runc.txt"));
        // Not closed: the backend is the JVM's one for this model (ModelRegistry), which the job's operators share.
        Backend backend = location.backend(Set.of());
        LongContextGenerator generator = new LongContextGenerator(model, new Transformer(backend));
        String text = StreamingBenchmark.document(generator, story, targetTokens, 3);
        EnginePhaseOne engine = new EnginePhaseOne(generator, text, BlockLayout.of(blockSize));
        engine.measure(); // warm-up
        System.out.println("# " + Machine.describe());
        System.out.printf("# model %s (%s, exact cuts: %s); document of %d tokens, %d characters; blocks of %d%n",
                modelDir.getFileName(), model.tokenizer().getClass().getSimpleName(),
                model.tokenizer().hasExactCuts(), engine.tokens, text.length(), blockSize);

        List<Cell> cells = new ArrayList<>();
        try (EmbeddedKafka kafka = EmbeddedKafka.builder().brokerProperty("group.initial.rebalance.delay.ms", "0")
                .start()) {
            for (String way : ways) {
                cells.addAll(runJob(kafka, location, way.trim(), blockSize, chunkSizes, text,
                        StreamingBenchmark.document(generator, story, blockSize / 2, 7), engine));
            }
        }

        System.out.println();
        System.out.println("| tokenization | chunk chars | chunks | job phase 1 s | probe s (subtracted) "
                + "| engine phase 1 s (tokenize + encode, just before) | job / engine |");
        System.out.println("|---|---:|---:|---:|---:|---:|---:|");
        for (Cell cell : cells) {
            System.out.printf("| %s | %d | %d | %.2f | %.2f | %.2f | %.2f |%n", cell.way(), cell.chunkChars(),
                    cell.chunks(), cell.jobSeconds(), cell.probeSeconds(), cell.engineSeconds(),
                    cell.jobSeconds() / cell.engineSeconds());
        }
        System.exit(0); // DJL and Flink leave non-daemon threads behind
    }

    /** One job (parallelism 1) for one way of tokenizing; every chunk size's document in it, one after another. */
    private static List<Cell> runJob(EmbeddedKafka kafka, ModelLocation location, String way, int blockSize,
                                     List<Integer> chunkSizes, String text, String warmText, EnginePhaseOne engine)
            throws Exception {
        if (!way.equals("exact") && !way.equals("whole")) {
            throw new IllegalArgumentException("--ways takes exact and/or whole, got '" + way + "'");
        }
        String suffix = UUID.randomUUID().toString().substring(0, 8);
        BenchTopics topics = BenchTopics.create(kafka, suffix, 1);
        Configuration conf = new Configuration();
        LoopbackCluster.apply(conf);
        ClusterSettings.apply(conf, Files.createTempDirectory("starflink-ingest-checkpoints-"), Duration.ofSeconds(10));
        topics.applyTo(conf);
        conf.set(StarflinkOptions.MODEL, location.model());
        conf.set(StarflinkOptions.BLOCK_SIZE, blockSize);
        conf.set(StarflinkOptions.ALLOW_BEYOND_WINDOW, true);
        conf.set(StarflinkOptions.EXACT_CUTS, way.equals("exact"));
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment(conf);
        env.setParallelism(1);
        env.setMaxParallelism(StarflinkJob.DEFAULT_MAX_PARALLELISM);
        StarflinkJob.defineKafkaJob(env, conf);
        JobClient job = env.executeAsync("starflink-ingest-" + way + "-" + suffix);
        List<Cell> cells = new ArrayList<>();
        try (StarflinkClient client = new StarflinkClient(kafka.bootstrapServers(), topics.client())) {
            client.sendDocument("warm-" + suffix, 1, warmText, 200, n -> { });
            expectAnswer(client.awaitDocument("warm-" + suffix, Duration.ofMinutes(10)));
            for (int chunkChars : chunkSizes) {
                double engineSeconds = engine.measure();
                String docId = "doc-" + chunkChars + "-" + suffix;
                long start = System.nanoTime();
                int chunks = client.sendDocument(docId, 1, text, chunkChars, n -> { });
                expectAnswer(client.awaitDocument(docId, Duration.ofMinutes(20)));
                double total = (System.nanoTime() - start) / 1e9;
                long probeStart = System.nanoTime();
                expectAnswer(client.awaitDocument(docId, Duration.ofMinutes(1)));
                double probe = (System.nanoTime() - probeStart) / 1e9;
                cells.add(new Cell(way, chunkChars, chunks, total - probe, probe, engineSeconds));
                System.err.printf("# %s, %d-char chunks: job %.2f s, engine %.2f s%n", way, chunkChars,
                        total - probe, engineSeconds);
            }
        } finally {
            job.cancel().get(60, TimeUnit.SECONDS);
        }
        return cells;
    }

    private static void expectAnswer(AnswerToken last) {
        if (last.getError() != null) {
            throw new IllegalStateException("the probe question failed: " + last.getError());
        }
    }
}
