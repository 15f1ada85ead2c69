package org.starflink.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.starflink.engine.backend.Backend;
import org.starflink.engine.forward.Transformer;
import org.starflink.engine.generate.SamplingParams;
import org.starflink.engine.model.Model;
import org.starflink.engine.star.BlockLayout;
import org.starflink.engine.star.EncodedContext;
import org.starflink.engine.star.LongContextGenerator;
import org.starflink.it.cluster.ClusterProcesses;
import org.starflink.it.cluster.FlinkRest;
import org.starflink.it.cluster.FlinkSessionCluster;
import org.starflink.it.cluster.KafkaBrokerProcess;
import org.starflink.operators.messages.BlockKeys;
import org.starflink.pipeline.StarflinkJob;
import org.starflink.operators.model.ModelLocation;
import org.starflink.schemas.AnswerToken;
import org.starflink.schemas.BlockEvent;
import org.starflink.schemas.BlockEventKind;
import org.starflink.schemas.Question;

/**
 * Issue 16 on CPUs: the job jar on session clusters of 1, 2 and 4 TaskManager processes (one slot each, the job at
 * parallelism = TaskManagers), one document of about 16K tokens of the project's model in blocks of 1024: phase-1
 * time per worker count (first chunk sent -> the last block's ENCODED event, by the job's clock) next to the
 * single-process Star phase 1 and global prefill of the same tokens, and one greedy question's time to first token
 * and decode rate, whose answer must be the same at every worker count and equal to the engine's Star answer.
 *
 * <p>A benchmark, not a test: it prints a table (docs/performance.md) and asserts only the answers. Run with
 * {@code mvn -pl integration-tests -am verify -Dtest=none -Dit.test=StarScalingCpuIT -Dstarflink.bench.scaling=true
 * -Dsurefire.failIfNoSpecifiedTests=false}; skipped otherwise.
 */
class StarScalingCpuIT {
    static final boolean RUN = Boolean.getBoolean("starflink.bench.scaling");
    static final int TARGET_TOKENS = 16384;
    static final int BLOCK = 1024;
    static final int NEW_TOKENS = 16;
    static final Path DIR = Path.of("target", "scaling-it",
            Instant.now().toString().replace(":", "").replace(".", "-")).toAbsolutePath();
    static final Path MODEL = Path.of(System.getProperty("starflink.project.dir", ".."), "models",
            "starflink-synth-14m").toAbsolutePath();

    @RegisterExtension
    static final ClusterProcesses PROCESSES = new ClusterProcesses(DIR);

    private record Cell(int workers, int blocks, double phase1Seconds, long ttftMs, double decodeTokensPerSecond,
                        List<Integer> answer) {
    }

    @Test
    void phaseOneTimePerTaskManagerCount() throws Exception {
        assumeTrue(RUN, "a benchmark: run with -Dstarflink.bench.scaling=true");
        ModelLocation location = new ModelLocation(MODEL.toString(), null, "cpu");
        Model model = location.load();
        Backend backend = location.backend(Set.of()); // the JVM's one for this model: not closed
        LongContextGenerator engine = new LongContextGenerator(model, new Transformer(backend));
        String text = documentOf(engine, TARGET_TOKENS);
        int[] context = engine.contextTokens(text);
        int blocks = BlockLayout.of(BLOCK).split(context).size();
        String prompt = "Once upon a time";
        int[] question = engine.questionTokens(prompt);

        List<Integer> expected = new ArrayList<>(); // (its phase 1 warms the engine up for the timings below)
        for (int t : engine.generate(context, question, BlockLayout.of(BLOCK), SamplingParams.greedy(NEW_TOKENS),
                false, x -> { }).tokens()) {
            expected.add(t);
        }
        double starSeconds = encodeSeconds(engine, context, BlockLayout.of(BLOCK));
        double globalSeconds = encodeSeconds(engine, context, BlockLayout.of(context.length));

        KafkaBrokerProcess broker = PROCESSES.add(new KafkaBrokerProcess(DIR.resolve("kafka"))).start();
        List<Cell> cells = new ArrayList<>();
        for (int workers : List.of(1, 2, 4)) {
            cells.add(runCell(broker, workers, text, blocks, prompt));
            assertEquals(expected, cells.get(cells.size() - 1).answer(),
                    workers + " TaskManagers: the answer differs from the engine's Star answer");
        }

        System.out.printf("%n# %d-token document, %d blocks of %d, model %s; single process: Star phase 1 %.2f s,"
                + " global prefill %.2f s%n", context.length, blocks, BLOCK, MODEL.getFileName(), starSeconds,
                globalSeconds);
        System.out.println("| TaskManagers | phase 1 s | phase 1 / single-process Star | speed-up over 1 TaskManager "
                + "| TTFT ms | decode tok/s | answer = engine's |");
        System.out.println("|---:|---:|---:|---:|---:|---:|---|");
        for (Cell cell : cells) {
            System.out.printf("| %d | %.2f | %.2f | %.2f | %d | %.1f | yes |%n", cell.workers(), cell.phase1Seconds(),
                    cell.phase1Seconds() / starSeconds, cells.get(0).phase1Seconds() / cell.phase1Seconds(),
                    cell.ttftMs(), cell.decodeTokensPerSecond());
        }
    }

    private static Cell runCell(KafkaBrokerProcess broker, int workers, String text, int blocks, String prompt)
            throws Exception {
        String suffix = UUID.randomUUID().toString().substring(0, 8);
        String documents = "documents-" + suffix;
        String questions = "questions-" + suffix;
        String answers = "answers-" + suffix;
        String events = "block-events-" + suffix;
        broker.createTopics(Map.of(documents, workers, questions, workers, answers, workers, "rejected-" + suffix, 1,
                events, workers));
        try (FlinkSessionCluster cluster = new FlinkSessionCluster(DIR.resolve("flink-" + workers), 1,
                     Map.of("parallelism.default", Integer.toString(workers),
                             "execution.checkpointing.interval", "10 s"));
             KafkaClient kafka = new KafkaClient(broker.bootstrapServers());
             BlockEventLog blockEvents = new BlockEventLog(broker.bootstrapServers(), events)) {
            cluster.start(workers);
            cluster.awaitTaskManagers(workers, Duration.ofMinutes(2));
            FlinkRest rest = cluster.rest();
            String jarId = rest.uploadJar(StarflinkClusterIT.JOB_JAR);
            String jobId = rest.runJar(jarId, List.of(
                    "--starflink.kafka.bootstrap-servers", broker.bootstrapServers(),
                    "--starflink.kafka.group-id", "starflink-" + suffix,
                    "--starflink.topic.documents", documents,
                    "--starflink.topic.questions", questions,
                    "--starflink.topic.answers", answers,
                    "--starflink.topic.rejected", "rejected-" + suffix,
                    "--starflink.topic.block-events", events,
                    "--starflink.model", MODEL.toString(),
                    "--starflink.block-size", Integer.toString(BLOCK)), workers, null, Map.of());
            StarflinkClusterIT.await(cluster, DIR, "job " + jobId + " running", Duration.ofMinutes(3),
                    () -> rest.allTasksRunning(jobId));

            String docId = "doc-" + suffix;
            long sent = System.currentTimeMillis();
            Corpus.chunks(docId, 1, text, 4096).forEach(chunk -> kafka.send(documents, docId, chunk));
            List<String> keys = new ArrayList<>();
            for (int b = 0; b < blocks; b++) {
                keys.add(BlockKeys.of(docId, 1, b, StarflinkJob.DEFAULT_MAX_PARALLELISM));
            }
            blockEvents.awaitEncoded(keys, Duration.ofMinutes(15), () -> { });
            long lastEncoded = blockEvents.readToEnd().stream().filter(e -> e.getKind() == BlockEventKind.ENCODED)
                    .mapToLong(BlockEvent::getEventMs).max().orElseThrow();

            try (AnswerWatcher watcher = new AnswerWatcher(broker.bootstrapServers(), answers)) {
                Question ask = Corpus.question("q-" + suffix, docId, prompt, NEW_TOKENS);
                long asked = kafka.send(questions, ask.getQuestionId(), ask).timestamp();
                StarflinkClusterIT.await(cluster, DIR, "the answer of " + ask.getQuestionId(), Duration.ofMinutes(5),
                        () -> watcher.finals() >= 1);
                List<AnswerWatcher.Received> received = watcher.received();
                List<Integer> answer = received.stream().map(r -> r.token().getTokenId()).toList();
                assertTrue(received.stream().noneMatch(r -> r.token().getError() != null), "an error answer");
                long first = received.get(0).arrivedMs();
                long last = received.get(received.size() - 1).arrivedMs();
                Cell cell = new Cell(workers, blocks, (lastEncoded - sent) / 1e3, first - asked,
                        (received.size() - 1) / ((last - first) / 1e3), answer);
                System.out.printf("# %d TaskManagers: phase 1 %.2f s, TTFT %d ms%n", workers, cell.phase1Seconds(),
                        cell.ttftMs());
                rest.cancel(jobId);
                return cell;
            }
        }
    }

    private static double encodeSeconds(LongContextGenerator engine, int[] context, BlockLayout layout) {
        long start = System.nanoTime();
        try (EncodedContext ignored = engine.encode(context, layout)) {
            return (System.nanoTime() - start) / 1e9;
        }
    }

    /** The reference story's sentences, reshuffled, as many as make about {@code target} tokens. */
    private static String documentOf(LongContextGenerator engine, int target) {
        int sentences = 200;
        String text = Corpus.document(3, sentences);
        int tokens = engine.contextTokens(text).length;
        sentences = (int) ((long) sentences * target / tokens);
        return Corpus.document(3, sentences);
    }
}
