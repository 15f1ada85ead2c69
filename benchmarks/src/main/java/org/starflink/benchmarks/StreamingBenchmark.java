package org.starflink.benchmarks;

import java.io.IOException;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Random;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.apache.flink.api.common.JobID;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.starflink.operators.cluster.LoopbackCluster;
import org.starflink.engine.backend.BackendKind;
import org.starflink.engine.checkpoint.ModelRegistry;
import org.starflink.engine.forward.Transformer;
import org.starflink.engine.model.Model;
import org.starflink.engine.star.LongContextGenerator;
import org.starflink.kafka.EmbeddedKafka;
import org.starflink.operators.messages.BlockKeys;
import org.starflink.pipeline.StarflinkJob;
import org.starflink.pipeline.ClusterSettings;
import org.starflink.pipeline.client.FlinkRest;
import org.starflink.pipeline.StarflinkOptions;
import org.starflink.pipeline.client.StarflinkClient;
import org.starflink.schemas.AnswerToken;
import org.starflink.schemas.Question;

/**
 * The production streaming job ({@link StarflinkJob#defineKafkaJob}) on a local Flink cluster (RocksDB,
 * incremental checkpoints every 10 s, buffer timeout 0) between the topics of an embedded Kafka broker, all in
 * this JVM. For every (block workers, document length) cell a job of its own runs: a small warm-up document, the
 * measured document (phase 1: sent -> every block encoded), one warm-up question, then questions one at a time
 * through {@link StarflinkClient#ask}: time to first token (question record's Kafka timestamp -> first answer
 * record received by the client), decode tokens/s after the first token, and the per-layer round trip, both
 * derived (time per output token / layers: a whole layer cycle including the host's own compute) and as the query
 * host's {@code starflink.host.layerRoundTripMicros} histogram (requests sent -> every partial back) read through
 * the local cluster's REST API.
 *
 * <p>Usage: bin/benchmark streaming [--lengths 4096,8192,16384] [--workers 1,2] [--questions N]
 * [--max-new-tokens N] [--model PATH] [--block-size B] [--chunk-chars C]
 */
public final class StreamingBenchmark {
    private static final String[] PROMPTS = {"Once upon a time", "Lily said", "The ball was", "Her mom said",
        "Tim wanted to"};

    private record Settings(List<Integer> lengths, List<Integer> workers, int questions, int maxNewTokens,
                            Path model, Path tokenizer, int blockSize, int chunkChars) {
    }

    /** One answered question, as the client saw it. */
    private record Answer(long ttftMs, long jobTtftMs, int tokens, long decodeNanos) {
    }

    /**
     * The query host's layerRoundTripMicros histogram (over subtasks weighted by their finished questions);
     * count = layer round trips the cell's questions made (the histogram itself reports no count over REST);
     * messages = the mean of the host's layerMessages (messages that brought a layer's partials back), NaN for a
     * build without it.
     */
    record RoundTrip(long count, double mean, double p50, double p95, double messages) {
        static final RoundTrip NONE = new RoundTrip(0, Double.NaN, Double.NaN, Double.NaN, Double.NaN);
    }

    private record Cell(int workers, int tokens, int blocks, double phase1Seconds, List<Answer> answers,
                        RoundTrip roundTrip) {
    }

    public static void main(String[] args) throws Exception {
        Settings settings = parse(args);
        Model model = ModelRegistry.model(settings.model(), settings.tokenizer());
        int layers = model.config().layers();
        LongContextGenerator tokens = new LongContextGenerator(model,
                new Transformer(ModelRegistry.backend(model, BackendKind.REFERENCE)));
        String story = Files.readString(Path.of(System.getProperty("starflink.shared.dir", "../shared"),
                "models/stories260K/reference/greedy_t0_256steps_runc.txt")).strip();

        System.out.println("# Streaming job: Kafka -> Flink (RocksDB, checkpoints 10 s, buffer timeout 0) -> Kafka,"
                + " one JVM");
        System.out.println("# machine: " + Machine.describe());
        System.out.printf("# model %s (%d layers, dim %d, window %d), backend djl, block = anchor = %d tokens, "
                        + "documents sent in chunks of %d chars, %d questions per cell (greedy, max %d new tokens), "
                        + "one at a time%n",
                settings.model().getFileName(), layers, model.config().dim(), model.config().maxPositions(),
                settings.blockSize(), settings.chunkChars(), settings.questions(), settings.maxNewTokens());

        Map<Integer, String> documents = new HashMap<>();
        Map<Integer, Integer> counted = new HashMap<>();
        for (int length : settings.lengths()) {
            documents.put(length, document(tokens, story, length, length));
            counted.put(length, tokens.contextTokens(documents.get(length)).length); // the job's exact count
            System.err.printf("# document of %d tokens (target %d)%n", counted.get(length), length);
        }
        String warmDocument = document(tokens, story, settings.blockSize() / 2, 7);

        List<Cell> cells = new ArrayList<>();
        try (EmbeddedKafka kafka = EmbeddedKafka.builder().brokerProperty("group.initial.rebalance.delay.ms", "0")
                .start()) {
            for (int workers : settings.workers()) {
                for (int length : settings.lengths()) {
                    Cell cell = runCell(kafka, settings, tokens, layers, workers, documents.get(length),
                            counted.get(length), warmDocument);
                    cells.add(cell);
                    System.err.printf("# done: workers %d, %d tokens%n", workers, cell.tokens());
                }
            }
        }

        System.out.println();
        System.out.println("| block workers | document tokens | blocks | phase 1 s | questions | new tokens "
                + "| TTFT ms (median) | job TTFT ms (median) | decode tok/s | ms / token "
                + "| per-layer cycle ms (derived) | layerRoundTripMicros mean / p50 / p95 (samples) |");
        System.out.println("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
        for (Cell cell : cells) {
            List<Long> ttft = new ArrayList<>();
            List<Long> jobTtft = new ArrayList<>();
            long decodeTokens = 0;
            long decodeNanos = 0;
            long newTokens = 0;
            for (Answer a : cell.answers()) {
                ttft.add(a.ttftMs());
                jobTtft.add(a.jobTtftMs());
                newTokens += a.tokens();
                if (a.tokens() > 1) {
                    decodeTokens += a.tokens() - 1;
                    decodeNanos += a.decodeNanos();
                }
            }
            double tokensPerSecond = decodeNanos == 0 ? Double.NaN : decodeTokens / (decodeNanos / 1e9);
            double msPerToken = 1000.0 / tokensPerSecond;
            RoundTrip rt = cell.roundTrip();
            System.out.printf("| %d | %d | %d | %.2f | %d | %d | %d | %d | %.1f | %.1f | %.2f | %s |%n",
                    cell.workers(), cell.tokens(), cell.blocks(), cell.phase1Seconds(), cell.answers().size(),
                    newTokens, median(ttft), median(jobTtft), tokensPerSecond, msPerToken, msPerToken / layers,
                    rt.count() == 0 ? "n/a" : String.format("%.0f / %.0f / %.0f µs (%d)", rt.mean(), rt.p50(),
                            rt.p95(), rt.count()));
        }
        System.out.println();
        System.out.println("# TTFT: question record's Kafka timestamp -> first answer record received by the client."
                + " job TTFT: the job's own prefill_ms (question received by the document operator -> first"
                + " token emitted).");
        System.out.println("# per-layer cycle (derived) = (ms / token) / layers, including the host's merge and"
                + " layer compute. layerRoundTripMicros: the query host's histogram (layer requests sent -> every"
                + " partial back; includes the warm-up question's layers), via the REST API.");
        System.exit(0); // DJL and Flink leave non-daemon threads behind
    }

    private static Cell runCell(EmbeddedKafka kafka, Settings settings, LongContextGenerator tokens, int layers,
                                int workers, String text, int contextTokens, String warmText)
            throws Exception {
        String suffix = UUID.randomUUID().toString().substring(0, 8);
        BenchTopics bench = BenchTopics.create(kafka, suffix, 2);
        StarflinkClient.TopicNames topics = bench.client();
        String blockEvents = bench.blockEvents();
        int restPort = freePort();
        Path checkpoints = Files.createTempDirectory("starflink-bench-checkpoints-");

        Configuration conf = new Configuration();
        conf.setString("rest.port", String.valueOf(restPort));
        conf.setString("rest.bind-port", String.valueOf(restPort));
        conf.setString("metrics.fetcher.update-interval", "500 ms");
        ClusterSettings.apply(conf, checkpoints, Duration.ofSeconds(10));
        LoopbackCluster.apply(conf);
        conf.setString("taskmanager.numberOfTaskSlots", String.valueOf(workers));
        bench.applyTo(conf);
        conf.set(StarflinkOptions.MODEL, settings.model().toString());
        if (settings.tokenizer() != null) {
            conf.set(StarflinkOptions.TOKENIZER, settings.tokenizer().toString());
        }
        conf.set(StarflinkOptions.BLOCK_SIZE, settings.blockSize());
        conf.set(StarflinkOptions.ALLOW_BEYOND_WINDOW, true);

        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment(conf);
        env.setParallelism(workers);
        env.setMaxParallelism(128);
        StarflinkJob.defineKafkaJob(env, conf);
        JobClient job = env.executeAsync("starflink-bench-" + workers + "w-" + suffix);

        try (StarflinkClient client = new StarflinkClient(kafka.bootstrapServers(), topics);
             EncodedBlocks encoded = new EncodedBlocks(kafka.bootstrapServers(), blockEvents)) {
            // Warm-up document: the phase-1 path of this job (RocksDB, model load, JIT) before the measured one.
            String warmId = "warm-" + suffix;
            client.sendDocument(warmId, 1, warmText, settings.chunkChars(), n -> { });
            encoded.awaitEncoded(blockKeys(warmId, blockCount(tokens, warmText, settings.blockSize())), job,
                    Duration.ofMinutes(10));

            String docId = "doc-" + suffix;
            int blocks = (contextTokens + settings.blockSize() - 1) / settings.blockSize();
            long t0 = System.currentTimeMillis();
            client.sendDocument(docId, 1, text, settings.chunkChars(), n -> { });
            // sent -> the last block's phase 1 done, by the job's clock (the block events say when)
            double phase1Seconds = (encoded.awaitEncoded(blockKeys(docId, blocks), job, Duration.ofMinutes(10))
                    - t0) / 1e3;

            // Warm-up question on the measured document (its layers count in the histogram), then the measured ones.
            int histogramSamples = ask(client, question("warmq-" + suffix, docId, PROMPTS[0], 4), null) * layers;
            List<Answer> answers = new ArrayList<>();
            Map<String, long[]> received = new HashMap<>();
            for (int q = 0; q < settings.questions(); q++) {
                String id = "q" + q + "-" + suffix;
                long[] firstMs = new long[1];
                long[] nanos = new long[2];
                long[] jobTtft = new long[1];
                int n = ask(client, question(id, docId, PROMPTS[q % PROMPTS.length], settings.maxNewTokens()),
                        token -> {
                            long now = System.nanoTime();
                            if (token.getIndex() == 0) {
                                firstMs[0] = System.currentTimeMillis();
                                nanos[0] = now;
                                jobTtft[0] = token.getPrefillMs();
                            }
                            nanos[1] = now;
                        });
                histogramSamples += n * layers;
                received.put(id, new long[] {firstMs[0], n, nanos[1] - nanos[0], jobTtft[0]});
            }
            Map<String, Long> sentMs = questionTimestamps(kafka.bootstrapServers(), topics.questions());
            for (Map.Entry<String, long[]> e : received.entrySet()) {
                long[] r = e.getValue();
                answers.add(new Answer(r[0] - sentMs.get(e.getKey()), r[3], (int) r[1], r[2]));
            }
            RoundTrip roundTrip = readRoundTrip(restPort, job.getJobID(), workers, settings.questions() + 1,
                    histogramSamples);
            return new Cell(workers, contextTokens, blocks, phase1Seconds, answers, roundTrip);
        } finally {
            try {
                job.cancel().get(60, TimeUnit.SECONDS);
            } catch (Exception e) {
                System.err.println("# cancel: " + e);
            }
        }
    }

    /** Asks and waits for the final record; returns the number of answer tokens. */
    private static int ask(StarflinkClient client, Question question,
                           java.util.function.Consumer<AnswerToken> onToken) {
        int[] count = new int[1];
        AnswerToken last = client.ask(question, token -> {
            count[0]++;
            if (onToken != null) {
                onToken.accept(token);
            }
        }, Duration.ofMinutes(10));
        if (last.getError() != null) {
            throw new IllegalStateException("question " + question.getQuestionId() + " failed: " + last.getError());
        }
        return count[0];
    }

    private static Question question(String id, String docId, String text, int maxNewTokens) {
        return Question.newBuilder().setQuestionId(id).setDocId(docId).setText(text).setMaxNewTokens(maxNewTokens)
                .setTemperature(0f).setTopP(1f).setSeed(0).setStop(List.of()).build();
    }

    private static int blockCount(LongContextGenerator tokens, String text, int blockSize) {
        return (tokens.contextTokens(text).length + blockSize - 1) / blockSize;
    }

    private static List<String> blockKeys(String docId, int blocks) {
        List<String> keys = new ArrayList<>();
        for (int b = 0; b < blocks; b++) {
            keys.add(BlockKeys.of(docId, 1, b, StarflinkJob.DEFAULT_MAX_PARALLELISM));
        }
        return keys;
    }

    /** The producer timestamps (CreateTime) of the question records, by question id (the record key). */
    private static Map<String, Long> questionTimestamps(String bootstrap, String topic) {
        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        Map<String, Long> result = new HashMap<>();
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(props)) {
            List<TopicPartition> partitions = consumer.partitionsFor(topic).stream()
                    .map(p -> new TopicPartition(topic, p.partition())).toList();
            consumer.assign(partitions);
            consumer.seekToBeginning(partitions);
            Map<TopicPartition, Long> end = consumer.endOffsets(partitions);
            long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
            while (partitions.stream().anyMatch(p -> consumer.position(p) < end.get(p))
                    && System.nanoTime() < deadline) {
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(100))) {
                    result.put(new String(r.key(), StandardCharsets.UTF_8), r.timestamp());
                }
            }
        }
        return result;
    }

    /**
     * Reads starflink.host.layerRoundTripMicros of every query-host subtask through the REST API. The REST view of a
     * histogram has no count (min, max, mean, median, stddev, p75 ... p999 of its window of 1000), so subtasks are
     * weighted by their questionsFinished counter, and the read waits until those add up to {@code questions} (the
     * REST metric fetcher lags behind the job), or 20 s.
     */
    static RoundTrip readRoundTrip(int port, JobID jobId, int subtasks, int questions, int samples) {
        try {
            FlinkRest rest = new FlinkRest("http://localhost:" + port);
            String job = jobId.toString();
            FlinkRest.Vertex vertex = rest.vertex(job, "Query host").orElse(null);
            if (vertex == null) {
                System.err.println("# no query-host vertex in the REST job listing");
                return RoundTrip.NONE;
            }
            long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
            while (true) {
                long finished = 0;
                double mean = 0;
                double p50 = 0;
                double p95 = 0;
                double messages = 0;
                long withMessages = 0;
                for (int s = 0; s < subtasks; s++) {
                    Map<String, Double> values = rest.subtaskMetrics(job, vertex, s,
                            id -> id.contains("starflink.host.layerRoundTripMicros_")
                                    || id.contains("starflink.host.layerMessages_")
                                    || id.endsWith("starflink.host.questionsFinished"));
                    long n = values.getOrDefault("questionsFinished", 0.0).longValue();
                    if (n > 0 && values.containsKey("layerRoundTripMicros_median")) {
                        finished += n;
                        mean += n * values.get("layerRoundTripMicros_mean");
                        p50 += n * values.get("layerRoundTripMicros_median");
                        p95 += n * values.get("layerRoundTripMicros_p95");
                        if (values.containsKey("layerMessages_mean")) {
                            withMessages += n;
                            messages += n * values.get("layerMessages_mean");
                        }
                    }
                }
                if (finished >= questions || System.nanoTime() > deadline) {
                    if (finished < questions) {
                        System.err.printf("# layerRoundTripMicros: %d of %d questions reported%n", finished,
                                questions);
                    }
                    return finished == 0 ? RoundTrip.NONE
                            : new RoundTrip(samples, mean / finished, p50 / finished, p95 / finished,
                                    withMessages == 0 ? Double.NaN : messages / withMessages);
                }
                Thread.sleep(500);
            }
        } catch (Exception e) {
            System.err.println("# could not read layerRoundTripMicros through REST: " + e);
            return RoundTrip.NONE;
        }
    }

    /**
     * Text of the model's reference story (sentences reshuffled, repeated) with {@code target} context tokens
     * (BOS included), or as close below as word boundaries allow. The tokenizer is quadratic in the text length,
     * so the text is assembled from sentences whose token counts are known (the tokenizer's dummy-prefix space
     * makes encode(a + " " + b) = encode(a) + encode(b) at a sentence boundary); the caller counts the result once.
     */
    static String document(LongContextGenerator tokens, String story, int target, long seed) {
        List<String> sentences = new ArrayList<>(List.of(story.split("(?<=[.!?\"])\\s+")));
        Map<String, Integer> counts = new HashMap<>();
        Random random = new Random(seed);
        StringBuilder text = new StringBuilder();
        int total = 1; // BOS
        while (true) {
            Collections.shuffle(sentences, random);
            for (String sentence : sentences) {
                int n = counts.computeIfAbsent(sentence, k -> tokens.contextTokens(k).length - 1);
                if (total + n > target) {
                    // The last sentence: as many of its words as fit.
                    String[] words = sentence.split(" ");
                    String best = null;
                    for (int w = 1; w < words.length; w++) {
                        String part = String.join(" ", List.of(words).subList(0, w));
                        if (total + tokens.contextTokens(part).length - 1 > target) {
                            break;
                        }
                        best = part;
                    }
                    if (best != null) {
                        text.append(text.length() == 0 ? "" : " ").append(best);
                    }
                    return text.toString();
                }
                text.append(text.length() == 0 ? "" : " ").append(sentence);
                total += n;
            }
        }
    }

    static int freePort() throws IOException {
        try (ServerSocket socket = new ServerSocket(0)) {
            return socket.getLocalPort();
        }
    }

    private static long median(List<Long> values) {
        List<Long> sorted = new ArrayList<>(values);
        Collections.sort(sorted);
        return sorted.isEmpty() ? -1 : sorted.get(sorted.size() / 2);
    }

    private static Settings parse(String[] args) {
        List<Integer> lengths = BenchArgs.ints(BenchArgs.option(args, "--lengths", "4096,8192,16384"));
        List<Integer> workers = BenchArgs.ints(BenchArgs.option(args, "--workers", "1,2"));
        int questions = Integer.parseInt(BenchArgs.option(args, "--questions", "3"));
        int maxNewTokens = Integer.parseInt(BenchArgs.option(args, "--max-new-tokens", "32"));
        Path model = Path.of(BenchArgs.option(args, "--model", Path.of(System.getProperty("starflink.shared.dir",
                "../shared"), "models/stories260K/stories260K.bin").toString())).toAbsolutePath();
        Path sibling = model.resolveSibling("tok512.bin"); // llama2.c checkpoints keep their tokenizer apart
        Path tokenizer = model.toString().endsWith(".bin") && Files.exists(sibling) ? sibling : null;
        int blockSize = Integer.parseInt(BenchArgs.option(args, "--block-size", "1024"));
        int chunkChars = Integer.parseInt(BenchArgs.option(args, "--chunk-chars", "4096"));
        return new Settings(lengths, workers, questions, maxNewTokens, model, tokenizer, blockSize, chunkChars);
    }
}
