package org.starflink.benchmarks;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.core.execution.JobClient;
import org.starflink.benchmarks.Asker.Answer;
import org.starflink.engine.backend.BackendKind;
import org.starflink.engine.checkpoint.ModelRegistry;
import org.starflink.engine.forward.Transformer;
import org.starflink.engine.model.Model;
import org.starflink.engine.star.LongContextGenerator;
import org.starflink.kafka.EmbeddedKafka;
import org.starflink.operators.loop.LoopHeadOperator;
import org.starflink.operators.model.ModelLocation;
import org.starflink.pipeline.StarflinkOptions;
import org.starflink.pipeline.client.FlinkRest;
import org.starflink.pipeline.client.StarflinkClient;
import org.starflink.schemas.AnswerToken;

/**
 * Load: N documents, then M greedy questions sent at once, spread round-robin over them, on the production job
 * ({@link LocalJobs}: embedded Kafka, a local Flink cluster with RocksDB, one JVM) with the loop's cap
 * ({@code starflink.max-questions-in-flight}) per query-host subtask. Per (N, M), a job of its own: throughput
 * (answers/s and answer tokens/s from the first question sent to the last final record) and latency percentiles
 * at the consumer: TTFT (question record's Kafka timestamp -> its first answer record) and time per answer (-> its
 * final record), p50 / p95 / p99; and from the REST API the loop heads' peak in flight and the questions that
 * waited at the cap.
 *
 * <p>Usage: bin/benchmark load [--loads 2x8,8x32,8x64,16x128 (N x M)] [--workers 2] [--cap 8] [--doc-tokens 320]
 * [--block-size 64] [--max-new-tokens 32] [--model PATH (stories260K)]
 */
public final class LoadBenchmark {
    private static final String[] PROMPTS = {"Once upon a time", "Lily said", "The ball was", "Her mom said",
        "Tim wanted to", "The sun was", "They went to", "The little dog"};

    private LoadBenchmark() {
    }

    private record Load(int documents, int questions) {
    }

    private record Settings(List<Load> loads, int workers, int cap, int docTokens, int blockSize, int maxNewTokens,
                            Path model) {
    }

    private record Cell(Load load, List<Answer> answers, double wallSeconds, long peakInFlight, long delayed,
                        long waitedMs) {
    }

    public static void main(String[] args) throws Exception {
        Settings settings = parse(args);
        ModelLocation location = LocalJobs.cpuModel(settings.model());
        Model model = location.load();
        LongContextGenerator tokens = new LongContextGenerator(model,
                new Transformer(ModelRegistry.backend(model, BackendKind.REFERENCE)));
        String story = Files.readString(Path.of(System.getProperty("starflink.shared.dir", "../shared"),
                "models/stories260K/reference/greedy_t0_256steps_runc.txt")).strip();
        int maxDocuments = settings.loads().stream().mapToInt(Load::documents).max().orElseThrow();
        List<String> texts = new ArrayList<>();
        for (int d = 0; d < maxDocuments; d++) {
            texts.add(StreamingBenchmark.document(tokens, story, settings.docTokens(), 100 + d));
        }

        System.out.println("# " + Machine.describe());
        System.out.printf("# model %s (%d layers); documents of %d tokens in blocks of %d; greedy, %d new tokens per "
                        + "question; parallelism %d, starflink.max-questions-in-flight %d per query-host subtask%n",
                settings.model().getFileName(), model.config().layers(), settings.docTokens(), settings.blockSize(),
                settings.maxNewTokens(), settings.workers(), settings.cap());
        List<Cell> cells = new ArrayList<>();
        try (EmbeddedKafka kafka = EmbeddedKafka.builder().brokerProperty("group.initial.rebalance.delay.ms", "0")
                .start()) {
            for (Load load : settings.loads()) {
                cells.add(runCell(kafka, location, settings, load, texts.subList(0, load.documents())));
            }
        }

        System.out.println();
        System.out.println("| documents | questions at once | answers | answer tokens | wall s | answers/s | tokens/s "
                + "| TTFT ms p50 / p95 / p99 | time per answer ms p50 / p95 / p99 | loop peak in flight "
                + "| questions that waited at the cap (ms waited) |");
        System.out.println("|---:|---:|---:|---:|---:|---:|---:|---|---|---:|---|");
        for (Cell cell : cells) {
            List<Long> ttft = new ArrayList<>();
            List<Long> answerMs = new ArrayList<>();
            int answerTokens = 0;
            for (Answer a : cell.answers()) {
                ttft.add(a.ttftMs());
                answerMs.add(a.answerMs());
                answerTokens += a.tokens().size();
            }
            System.out.printf("| %d | %d | %d | %d | %.1f | %.2f | %.1f | %s | %s | %d | %d (%d) |%n",
                    cell.load().documents(), cell.load().questions(), cell.answers().size(), answerTokens,
                    cell.wallSeconds(), cell.answers().size() / cell.wallSeconds(), answerTokens / cell.wallSeconds(),
                    percentiles(ttft), percentiles(answerMs), cell.peakInFlight(), cell.delayed(), cell.waitedMs());
        }
        System.out.println();
        System.out.println("# wall: first question sent -> last final answer record. Percentiles by nearest rank. "
                + "Loop peak in flight: the largest loopRecordsInFlightPeak of the loop-head subtasks (at most the cap)."
                + " Waited: loopAdmissionsDelayed, loopAdmissionWaitMs summed over subtasks.");
        System.exit(0); // DJL and Flink leave non-daemon threads behind
    }

    private static Cell runCell(EmbeddedKafka kafka, ModelLocation location, Settings settings, Load load,
                                List<String> texts) throws Exception {
        String suffix = UUID.randomUUID().toString().substring(0, 8);
        BenchTopics topics = BenchTopics.create(kafka, suffix, 2);
        int restPort = StreamingBenchmark.freePort();
        Configuration conf = LocalJobs.configuration(topics, settings.workers(), restPort, location,
                settings.blockSize());
        conf.set(StarflinkOptions.MAX_QUESTIONS_IN_FLIGHT, settings.cap());
        JobClient job = LocalJobs.start(conf, settings.workers(), "starflink-load-" + load.documents() + "x"
                + load.questions() + "-" + suffix);
        try (StarflinkClient client = new StarflinkClient(kafka.bootstrapServers(), topics.client());
             Asker asker = new Asker(kafka.bootstrapServers(), topics.client(), settings.maxNewTokens())) {
            List<String> docIds = new ArrayList<>();
            for (int d = 0; d < texts.size(); d++) {
                docIds.add("doc" + d + "-" + suffix);
                client.sendDocument(docIds.get(d), 1, texts.get(d), 4096, n -> { });
            }
            for (String docId : docIds) { // a probe each: every block encoded, and the question path warm
                AnswerToken probe = client.awaitDocument(docId, Duration.ofMinutes(10));
                if (probe.getError() != null) {
                    throw new IllegalStateException("the document probe of " + docId + " failed: " + probe.getError());
                }
            }
            List<String> asked = new ArrayList<>();
            List<String> about = new ArrayList<>();
            for (int q = 0; q < load.questions(); q++) {
                asked.add(PROMPTS[q % PROMPTS.length]);
                about.add(docIds.get(q % docIds.size()));
            }
            long start = System.nanoTime();
            List<Answer> answers = asker.askAll(about, asked, "load");
            long lastNanos = answers.stream().mapToLong(Answer::lastNanos).max().orElseThrow();
            double wall = (lastNanos - start) / 1e9;
            System.err.printf("# %d documents x %d questions: %.1f s%n", load.documents(), load.questions(), wall);
            Map<String, Long> loop = loopMetrics(restPort, job, load.questions() + load.documents());
            return new Cell(load, answers, wall, loop.get(LoopHeadOperator.METRIC_PEAK_IN_FLIGHT),
                    loop.get(LoopHeadOperator.METRIC_ADMISSIONS_DELAYED),
                    loop.get(LoopHeadOperator.METRIC_ADMISSION_WAIT_MS));
        } finally {
            job.cancel().get(60, TimeUnit.SECONDS);
        }
    }

    /**
     * The loop heads' peak in flight (the largest over subtasks) and admission waits (summed), once every finished
     * question has been reported ({@code questionsFinished}; the REST metric fetcher lags), or after 20 s.
     */
    private static Map<String, Long> loopMetrics(int port, JobClient job, int questions) throws Exception {
        FlinkRest rest = new FlinkRest("http://localhost:" + port);
        String jobId = job.getJobID().toString();
        FlinkRest.Vertex vertex = rest.vertex(jobId, "Loop head").orElseThrow();
        long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
        while (rest.sum(jobId, vertex, "starflink.host.questionsFinished") < questions
                && System.nanoTime() < deadline) {
            Thread.sleep(500);
        }
        long peak = 0;
        for (int s = 0; s < vertex.parallelism(); s++) {
            peak = Math.max(peak, rest.subtaskMetrics(jobId, vertex, s,
                    id -> id.endsWith("." + LoopHeadOperator.METRIC_PEAK_IN_FLIGHT))
                    .getOrDefault(LoopHeadOperator.METRIC_PEAK_IN_FLIGHT, -1.0).longValue());
        }
        return Map.of(LoopHeadOperator.METRIC_PEAK_IN_FLIGHT, peak,
                LoopHeadOperator.METRIC_ADMISSIONS_DELAYED,
                (long) rest.sum(jobId, vertex, "." + LoopHeadOperator.METRIC_ADMISSIONS_DELAYED),
                LoopHeadOperator.METRIC_ADMISSION_WAIT_MS,
                (long) rest.sum(jobId, vertex, "." + LoopHeadOperator.METRIC_ADMISSION_WAIT_MS));
    }

    /** p50 / p95 / p99 by nearest rank. */
    private static String percentiles(List<Long> values) {
        List<Long> sorted = new ArrayList<>(values);
        Collections.sort(sorted);
        return String.format("%d / %d / %d", rank(sorted, 0.50), rank(sorted, 0.95), rank(sorted, 0.99));
    }

    private static long rank(List<Long> sorted, double p) {
        return sorted.get(Math.max(0, (int) Math.ceil(p * sorted.size()) - 1));
    }

    private static Settings parse(String[] args) {
        List<Load> loads = new ArrayList<>();
        for (String load : BenchArgs.option(args, "--loads", "2x8,8x32,8x64,16x128").split(",")) {
            String[] nm = load.trim().split("x");
            loads.add(new Load(Integer.parseInt(nm[0]), Integer.parseInt(nm[1])));
        }
        Path model = Path.of(BenchArgs.option(args, "--model", Path.of(System.getProperty("starflink.shared.dir",
                "../shared"), "models/stories260K/stories260K.bin").toString())).toAbsolutePath();
        return new Settings(loads, Integer.parseInt(BenchArgs.option(args, "--workers", "2")),
                Integer.parseInt(BenchArgs.option(args, "--cap", "8")),
                Integer.parseInt(BenchArgs.option(args, "--doc-tokens", "320")),
                Integer.parseInt(BenchArgs.option(args, "--block-size", "64")),
                Integer.parseInt(BenchArgs.option(args, "--max-new-tokens", "32")), model);
    }
}
