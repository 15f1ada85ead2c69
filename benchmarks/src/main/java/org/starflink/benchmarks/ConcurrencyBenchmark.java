package org.starflink.benchmarks;

import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.apache.flink.core.execution.JobClient;
import org.starflink.benchmarks.Asker.Answer;
import org.starflink.engine.backend.Backend;
import org.starflink.engine.forward.Transformer;
import org.starflink.engine.generate.GenerationResult;
import org.starflink.engine.generate.Generator;
import org.starflink.engine.generate.SamplingParams;
import org.starflink.engine.model.Model;
import org.starflink.engine.star.BlockLayout;
import org.starflink.engine.star.EncodedContext;
import org.starflink.engine.star.LongContextGenerator;
import org.starflink.engine.star.StarSession;
import org.starflink.kafka.EmbeddedKafka;
import org.starflink.operators.host.HostMetrics;
import org.starflink.operators.model.ModelLocation;
import org.starflink.pipeline.client.StarflinkClient;
import org.starflink.schemas.AnswerToken;

/**
 * Concurrent questions on one document: C questions sent at once to the streaming job (embedded Kafka, local Flink
 * cluster with RocksDB, the production topology) against the single-process engine answering the same C questions
 * one after another over the same encoded blocks. Per (parallelism, C): time to first token (question record's
 * Kafka timestamp -> its first answer record at the consumer), tokens/s per question, aggregate tokens/s (all
 * answer tokens / first question sent -> last answer record), and whether every streamed answer equals the engine's
 * Star answer token for token. Before the measured cells the job answers every level {@code --warm-up-rounds}
 * times, unmeasured (the JIT's compilations of the batched paths otherwise fall into the measured cells: after one
 * round C2 still compiled for 1.0 s during the 4-question cell and 1.7 s during the 16-question one, after eight
 * 0.24 and 0.39, docs/performance.md; {@code --warm-up one-question} keeps the older, colder warm-up of a single
 * question); each
 * cell reports the JIT's compile time while it ran (the JVM's {@code CompilationMXBean}, all compiler threads), the
 * share of the cores the measurement did not get. Once per job, after lone questions asked
 * one after another until they fill its window, the query host's {@code layerRoundTripMicros} histogram (requests
 * sent -> every block's partials back) through the REST API.
 *
 * <p>Uses only the job's and the client's public entry points, so the same harness also runs against an older
 * build of the job ({@code bin/benchmark concurrency-vs GIT_REF}): before and after in one run.
 *
 * <p>Usage: ConcurrencyBenchmark [--model DIR or llama2.c .bin] [--tokens N (16384)] [--block-size B (1024)]
 * [--concurrency 1,4,16] [--workers 1,2] [--max-new-tokens N (16)] [--warm-up levels|one-question]
 * [--warm-up-rounds N (8)]
 */
public final class ConcurrencyBenchmark {
    private static final String[] PROMPTS = {"Once upon a time", "Lily said", "The ball was", "Her mom said",
        "Tim wanted to", "The sun was", "They went to", "The little dog"};

    private ConcurrencyBenchmark() {
    }

    private record Settings(Path model, int tokens, int blockSize, List<Integer> concurrency, List<Integer> workers,
                            int maxNewTokens, boolean warmUp, int warmUpRounds) {
    }

    private record Cell(String side, int workers, int questions, List<Answer> answers, double wallSeconds,
                        boolean exact, double jitSeconds) {
        int tokens() {
            return answers.stream().mapToInt(a -> a.tokens().size()).sum();
        }
    }

    public static void main(String[] args) throws Exception {
        Settings settings = parse(args);
        ModelLocation location = LocalJobs.cpuModel(settings.model());
        Model model = location.load();
        // Not closed: the backend is the JVM's one for this model (ModelRegistry), which the job's operators share.
        Backend backend = location.backend(Set.of());
        LongContextGenerator generator = new LongContextGenerator(model, new Transformer(backend));
        String story = Files.readString(Path.of(System.getProperty("starflink.shared.dir", "../shared"),
                "models/stories260K/reference/greedy_t0_256steps_runc.txt"));
        String text = StreamingBenchmark.document(generator, story, settings.tokens(), 3);
        int[] context = generator.contextTokens(text);
        BlockLayout layout = BlockLayout.of(settings.blockSize());
        int blocks = layout.split(context).size();
        int maxQuestions = Collections.max(settings.concurrency());
        List<String> prompts = new ArrayList<>();
        for (int q = 0; q < maxQuestions; q++) {
            prompts.add(PROMPTS[q % PROMPTS.length] + (q < PROMPTS.length ? "" : " " + (q / PROMPTS.length)));
        }
        System.out.println("# " + Machine.describe());
        System.out.printf("# model %s (%d layers); document of %d tokens in %d blocks of %d; greedy, %d new tokens"
                        + " per question%n", settings.model().getFileName(), model.config().layers(), context.length,
                blocks, settings.blockSize(), settings.maxNewTokens());

        // The single-process baseline: phase 1 once, then the questions one after another (Star, same blocks).
        List<Cell> cells = new ArrayList<>();
        Map<String, List<Integer>> expected = new HashMap<>();
        try (EncodedContext encoded = generator.encode(context, layout)) {
            answerWithTheEngine(model, generator, encoded, prompts.subList(0, 1), settings, new HashMap<>()); // warm
            for (int questions : settings.concurrency()) {
                cells.add(answerWithTheEngine(model, generator, encoded, prompts.subList(0, questions), settings,
                        expected));
            }
        }
        Map<Integer, StreamingBenchmark.RoundTrip> roundTrips = new HashMap<>();
        try (EmbeddedKafka kafka = EmbeddedKafka.builder().brokerProperty("group.initial.rebalance.delay.ms", "0")
                .start()) {
            for (int workers : settings.workers()) {
                cells.addAll(runJob(kafka, location, model, settings, workers, text, prompts, expected, roundTrips));
            }
        }

        System.out.println();
        System.out.println("| answered by | parallelism | concurrent questions | tokens | TTFT ms p50 / max "
                + "| tok/s per question (p50) | aggregate tok/s | aggregate / one question's | equal to engine "
                + "| JIT compiling, s |");
        System.out.println("|---|---:|---:|---:|---:|---:|---:|---:|---|---:|");
        Map<String, Double> lone = new HashMap<>();
        for (Cell cell : cells) {
            double aggregate = cell.tokens() / cell.wallSeconds();
            String sideKey = cell.side() + "/" + cell.workers();
            if (cell.questions() == 1) {
                lone.put(sideKey, aggregate);
            }
            List<Long> ttft = new ArrayList<>();
            List<Double> perQuestion = new ArrayList<>();
            for (Answer a : cell.answers()) {
                ttft.add(a.ttftMs());
                if (a.tokens().size() > 1) {
                    perQuestion.add((a.tokens().size() - 1) / ((a.lastNanos() - a.firstNanos()) / 1e9));
                }
            }
            Collections.sort(ttft);
            Collections.sort(perQuestion);
            System.out.printf("| %s | %s | %d | %d | %d / %d | %.1f | %.1f | %.2f | %s | %.2f |%n", cell.side(),
                    cell.workers() == 0 ? "-" : String.valueOf(cell.workers()), cell.questions(), cell.tokens(),
                    ttft.get(ttft.size() / 2), ttft.get(ttft.size() - 1),
                    perQuestion.isEmpty() ? Double.NaN : perQuestion.get(perQuestion.size() / 2), aggregate,
                    aggregate / lone.getOrDefault(sideKey, Double.NaN), cell.exact() ? "yes" : "NO", cell.jitSeconds());
        }
        System.out.println();
        System.out.println("| parallelism | layerRoundTripMicros p50 | p95 | mean (lone questions) "
                + "| messages back per layer (mean) |");
        System.out.println("|---:|---:|---:|---:|---:|");
        for (int workers : settings.workers()) {
            StreamingBenchmark.RoundTrip rt = roundTrips.getOrDefault(workers, StreamingBenchmark.RoundTrip.NONE);
            System.out.printf("| %d | %.0f | %.0f | %.0f | %s |%n", workers, rt.p50(), rt.p95(), rt.mean(),
                    Double.isNaN(rt.messages()) ? "- (no metric)" : String.format("%.1f", rt.messages()));
        }
        System.out.println();
        System.out.println("# engine: one process, phase 1 once, the questions one after another; TTFT = its"
                + " question's pass after the previous question's answer. job: all C questions sent at once, after "
                + (settings.warmUp() ? "a warm-up that asked each level " + settings.warmUpRounds() + " time(s)"
                        : "one warm-up question")
                + "; round trip over the last " + HostMetrics.HISTOGRAM_WINDOW
                + " layers, of lone questions one after another.");
        System.exit(0); // DJL and Flink leave non-daemon threads behind
    }

    private static Cell answerWithTheEngine(Model model, LongContextGenerator generator, EncodedContext encoded,
                                            List<String> prompts, Settings settings,
                                            Map<String, List<Integer>> expected) {
        List<Answer> answers = new ArrayList<>();
        Generator sampler = new Generator(model.tokenizer(), model.config().eosIds());
        long start = System.nanoTime();
        long jitStart = jitMillis();
        for (String prompt : prompts) {
            int[] question = generator.questionTokens(prompt);
            long asked = System.nanoTime();
            long[] first = {0};
            GenerationResult result;
            try (StarSession session = generator.session(encoded, question.length + settings.maxNewTokens())) {
                result = sampler.generate(session, question, SamplingParams.greedy(settings.maxNewTokens()),
                        token -> {
                            if (first[0] == 0) {
                                first[0] = System.nanoTime();
                            }
                        });
            }
            List<Integer> tokens = new ArrayList<>();
            for (int t : result.tokens()) {
                tokens.add(t);
            }
            expected.put(prompt, tokens);
            answers.add(new Answer(prompt, (first[0] - asked) / 1_000_000, tokens, first[0], System.nanoTime()));
        }
        return new Cell("engine", 0, prompts.size(), answers, (System.nanoTime() - start) / 1e9, true,
                (jitMillis() - jitStart) / 1e3);
    }

    /** One job at {@code workers} parallelism: the document, a warm-up question, then each concurrency level. */
    private static List<Cell> runJob(EmbeddedKafka kafka, ModelLocation location, Model model, Settings settings,
                                     int workers,
                                     String text, List<String> prompts, Map<String, List<Integer>> expected,
                                     Map<Integer, StreamingBenchmark.RoundTrip> roundTrips) throws Exception {
        String suffix = UUID.randomUUID().toString().substring(0, 8);
        BenchTopics topics = BenchTopics.create(kafka, suffix, 2);
        int restPort = StreamingBenchmark.freePort();
        JobClient job = LocalJobs.start(LocalJobs.configuration(topics, workers, restPort, location,
                settings.blockSize()), workers, "starflink-concurrency-" + workers + "w-" + suffix);
        List<Cell> cells = new ArrayList<>();
        String docId = "doc-" + suffix;
        try (StarflinkClient client = new StarflinkClient(kafka.bootstrapServers(), topics.client());
             Asker asker = new Asker(kafka.bootstrapServers(), topics.client(), settings.maxNewTokens())) {
            client.sendDocument(docId, 1, text, 4096, n -> { });
            AnswerToken probe = client.awaitDocument(docId, Duration.ofMinutes(20));
            if (probe.getError() != null) {
                throw new IllegalStateException("the document probe failed: " + probe.getError());
            }
            int finished = 0;
            // warm-up on the encoded document, unmeasured: the measured cells then run on code closer to what a
            // long-running job runs
            for (int round = 0; round < (settings.warmUp() ? settings.warmUpRounds() : 1); round++) {
                for (int questions : settings.warmUp() ? settings.concurrency() : List.of(1)) {
                    asker.askAll(docId, prompts.subList(0, questions), "warm" + round + "-" + questions);
                    finished += questions;
                }
            }
            for (int questions : settings.concurrency()) {
                List<String> asked = prompts.subList(0, questions);
                long start = System.nanoTime();
                long jitStart = jitMillis();
                List<Answer> answers = asker.askAll(docId, asked, "c" + questions);
                double wall = (System.nanoTime() - start) / 1e9;
                boolean exact = answers.stream().allMatch(a -> a.tokens().equals(expected.get(a.id())));
                cells.add(new Cell("job", workers, questions, answers, wall, exact, (jitMillis() - jitStart) / 1e3));
                System.err.printf("# parallelism %d, %d questions: %.1f s, equal to engine: %s%n", workers,
                        questions, wall, exact);
                finished += questions;
            }
            // the round trip of a lone question: enough of them, one after another, to fill the host's histogram
            // window with their layers only
            int lone = HostMetrics.HISTOGRAM_WINDOW / (settings.maxNewTokens() * model.config().layers()) + 1;
            for (int q = 0; q < lone; q++) {
                asker.askAll(docId, prompts.subList(0, 1), "lone" + q);
            }
            roundTrips.put(workers, StreamingBenchmark.readRoundTrip(restPort, job.getJobID(), workers,
                    finished + lone, 0));
        } finally {
            job.cancel().get(60, TimeUnit.SECONDS);
        }
        return cells;
    }

    private static Settings parse(String[] args) {
        Path model = Path.of(BenchArgs.option(args, "--model", Path.of(System.getProperty("starflink.project.dir",
                "."), "models/starflink-synth-14m").toString())).toAbsolutePath();
        return new Settings(model, Integer.parseInt(BenchArgs.option(args, "--tokens", "16384")),
                Integer.parseInt(BenchArgs.option(args, "--block-size", "1024")),
                BenchArgs.ints(BenchArgs.option(args, "--concurrency", "1,4,16")),
                BenchArgs.ints(BenchArgs.option(args, "--workers", "1,2")),
                Integer.parseInt(BenchArgs.option(args, "--max-new-tokens", "16")),
                switch (BenchArgs.option(args, "--warm-up", "levels")) {
                    case "levels" -> true;
                    case "one-question" -> false;
                    default -> throw new IllegalArgumentException("--warm-up must be levels or one-question");
                },
                warmUpRounds(BenchArgs.option(args, "--warm-up-rounds", "8")));
    }

    private static int warmUpRounds(String value) {
        int rounds = Integer.parseInt(value);
        if (rounds < 1) {
            throw new IllegalArgumentException("--warm-up-rounds must be at least 1, is " + value);
        }
        return rounds;
    }

    /** Milliseconds this JVM's JIT compilers have spent so far, summed over their threads. */
    private static long jitMillis() {
        return ManagementFactory.getCompilationMXBean().getTotalCompilationTime();
    }
}
