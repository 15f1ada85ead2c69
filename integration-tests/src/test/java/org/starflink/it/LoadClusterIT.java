package org.starflink.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.LongSupplier;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.starflink.it.StarflinkClusterIT.Run;
import org.starflink.it.cluster.ClusterProcesses;
import org.starflink.it.cluster.FlinkRest;
import org.starflink.it.cluster.KafkaBrokerProcess;
import org.starflink.it.cluster.ManagedProcess;
import org.starflink.operators.messages.BlockKeys;
import org.starflink.pipeline.StarflinkJob;
import org.starflink.schemas.AnswerToken;
import org.starflink.schemas.BlockEventKind;
import org.starflink.schemas.FinishReason;
import org.starflink.schemas.Question;

/**
 * Issue 12, scenario 5: load sized for 2 cores on the multi-process cluster ({@link StarflinkClusterIT}'s fixture, a
 * cluster of its own): {@value #DOCUMENTS} documents, then {@value #QUESTIONS} sampled questions sent at once, four
 * times what the loop admits ({@code starflink.max-questions-in-flight} {@value #CAP} per query-host subtask, 2
 * subtasks), a decoded-KV cache smaller than the blocks ({@value #CACHE_BYTES} bytes per block subtask) and a short
 * document-state TTL ({@link #TTL}).
 *
 * <p>Asserted, from the topics and the REST API only: every question answered, equal to the engine's
 * single-process Star generation, no duplicate; both TaskManagers alive and registered, no failure, 0 restarts;
 * the cap respected and reached (the loop heads' {@code loopRecordsInFlightPeak} gauge is {@value #CAP} on the
 * busiest subtask), questions beyond it held back rather than failed ({@code loopAdmissionsDelayed} and
 * {@code loopAdmissionWaitMs} above 0); the decoded-KV cache never above its bound ({@code kvBytesCached}
 * sampled) while blocks were read back from RocksDB ({@code kvLoadsFromState} > 0); the TaskManagers' heap under
 * {@value #HEAP_BOUND_PERCENT}% of its maximum at every sample. After the load, the TTL: every block retires
 * (a RETIRED block event each, {@code blocksRetired} = the blocks, {@code kvBytesCached} 0) and a question about
 * an expired document gets {@code unknown document <id>}, as docs/document-operator.md says.
 *
 * <p>Only with {@code -Dstarflink.cluster.full=true}.
 */
class LoadClusterIT {
    static final Path DIR = StarflinkClusterIT.DIR.resolveSibling(StarflinkClusterIT.DIR.getFileName() + "-load");
    static final int DOCUMENTS = 8;
    static final int QUESTIONS = 32;
    static final int CAP = 4;
    static final long CACHE_BYTES = 256 << 10;
    static final Duration TTL = Duration.ofSeconds(45);
    static final int HEAP_BOUND_PERCENT = 90;

    @RegisterExtension
    static final ClusterProcesses PROCESSES = new ClusterProcesses(DIR);

    @BeforeAll
    static void startTheCluster() {
        assumeTrue(StarflinkClusterIT.FULL, "-Dstarflink.cluster.full=true runs it");
        StarflinkClusterIT.startTheCluster(PROCESSES);
    }

    /** The largest value each sampled quantity took while the load ran (the REST API polled every 250 ms). */
    static final class Peaks implements AutoCloseable {
        final Map<String, Long> max = new ConcurrentHashMap<>();
        private final Thread thread;
        private volatile boolean stop;

        Peaks(Map<String, LongSupplier> quantities) {
            thread = new Thread(() -> {
                while (!stop) {
                    quantities.forEach((name, quantity) -> {
                        try {
                            max.merge(name, quantity.getAsLong(), Math::max);
                        } catch (RuntimeException notNow) {
                            // a REST call failed or the metric is not there yet: the next sample counts
                        }
                    });
                    KafkaBrokerProcess.sleep(250);
                }
            }, "load-peaks");
            thread.setDaemon(true);
            thread.start();
        }

        long of(String name) {
            return max.getOrDefault(name, -1L);
        }

        @Override
        public void close() throws InterruptedException {
            stop = true;
            thread.join(10_000);
        }
    }

    @Test
    void documentsTimesConcurrentQuestionsAreAllAnsweredWithinTheCapTheCacheAndTheHeap() throws Exception {
        FlinkRest rest = StarflinkClusterIT.rest;
        Run run = new Run();
        for (int d = run.texts.size(); d < DOCUMENTS; d++) {
            run.texts.put("doc" + d + "-" + run.suffix, Corpus.document(d, 14 + 4 * (d % 3)));
        }
        run.options.put("starflink.max-questions-in-flight", Integer.toString(CAP));
        run.options.put("starflink.block.local-cache-bytes", Long.toString(CACHE_BYTES));
        run.options.put("starflink.document.state-ttl", TTL.toSeconds() + " s");
        List<ManagedProcess> taskManagers = StarflinkClusterIT.cluster.taskManagers();
        List<String> taskManagerIds = rest.taskManagerIds();
        try {
            // The references first, so that the test's generation races neither the job nor the TTL.
            List<Question> questions = run.questionsWithReferences(QUESTIONS);
            run.submit(2, null);
            int blocks = 0;
            for (int d = 0; d < DOCUMENTS; d++) {
                run.sendDocument(d);
                blocks += run.blocks(d);
            }
            int allBlocks = blocks;
            StarflinkClusterIT.await("all " + blocks + " blocks encoded", Duration.ofMinutes(2),
                    () -> run.blocksEncoded() == allBlocks);
            long heapMax = taskManagerIds.stream().mapToLong(id -> rest.taskManagerMetric(id,
                    "Status.JVM.Memory.Heap.Max")).min().orElseThrow();
            Map<String, LongSupplier> sampled = new LinkedHashMap<>();
            sampled.put("in flight", () -> rest.operatorMetricMax(run.jobId, "loopRecordsInFlight"));
            sampled.put("kvBytesCached", () -> rest.operatorMetricMax(run.jobId, "kvBytesCached"));
            for (String id : taskManagerIds) {
                sampled.put("heap " + id, () -> rest.taskManagerMetric(id, "Status.JVM.Memory.Heap.Used"));
            }
            int expectedTokens;
            long sentMs;
            long loadMs;
            try (Peaks peaks = new Peaks(sampled)) {
                expectedTokens = run.ask(questions);
                sentMs = System.currentTimeMillis();
                run.awaitAnswers(Duration.ofMinutes(6));
                loadMs = System.currentTimeMillis() - sentMs;
                peaks.close();
                int compared = run.assertAnswersEqualTheEngine();
                assertEquals(expectedTokens, compared, "tokens compared");
                assertEquals(0, run.watcher.duplicates(), "duplicate answer records without a failure");
                assertEquals(taskManagerIds.size(), rest.taskManagerIds().size(), "TaskManagers registered");
                taskManagers.forEach(ManagedProcess::assertAlive);
                assertEquals(0, rest.failureCount(run.jobId), "failures\n" + rest.exceptions(run.jobId));
                assertEquals(0, run.restarts(), "numRestarts");

                // The cap: never exceeded, reached, and the questions beyond it held back (not failed).
                StarflinkClusterIT.await("the loop heads' metrics", Duration.ofSeconds(30),
                        () -> rest.operatorMetricSum(run.jobId, "loopAdmissionsDelayed") >= 0);
                long peak = rest.operatorMetricMax(run.jobId, "loopRecordsInFlightPeak");
                long delayed = rest.operatorMetricSum(run.jobId, "loopAdmissionsDelayed");
                long waitedMs = rest.operatorMetricSum(run.jobId, "loopAdmissionWaitMs");
                assertTrue(peak <= CAP, "questions in the loop at once on one subtask: " + peak + " > the cap " + CAP);
                assertEquals(CAP, peak, "the load never filled the loop up to the cap");
                assertTrue(delayed > 0 && waitedMs > 0, "no question waited at the cap: " + delayed + " waited "
                        + waitedMs + " ms");
                // The decoded-KV cache: bounded, and too small for the blocks, so RocksDB served the rest.
                long cachedPeak = peaks.of("kvBytesCached");
                long loads = rest.operatorMetricSum(run.jobId, "kvLoadsFromState");
                assertTrue(cachedPeak >= 0 && cachedPeak <= CACHE_BYTES, "decoded KV cached on one block "
                        + "subtask: " + cachedPeak + " bytes, the bound is " + CACHE_BYTES);
                assertTrue(loads > 0, "no block KV read back from state: the cache bound was never hit");
                long heapPeak = taskManagerIds.stream().mapToLong(id -> peaks.of("heap " + id)).max().orElseThrow();
                assertTrue(heapPeak > 0 && heapPeak * 100 <= heapMax * HEAP_BOUND_PERCENT, "TaskManager heap used "
                        + heapPeak + " bytes of " + heapMax);

                // After the load, the TTL: every block retires, and the documents are gone.
                StarflinkClusterIT.await("every block retired by the TTL", TTL.plusMinutes(1),
                        () -> rest.operatorMetricSum(run.jobId, "blocksRetired") == allBlocks);
                long retiredMs = System.currentTimeMillis() - sentMs - loadMs;
                run.awaitACheckpointFromNow();
                for (int d = 0; d < DOCUMENTS; d++) {
                    for (int b = 0; b < run.blocks(d); b++) {
                        String key = BlockKeys.of(run.docIds().get(d), 1, b, StarflinkJob.DEFAULT_MAX_PARALLELISM);
                        assertEquals(1, run.blockEvents.count(key, BlockEventKind.RETIRED), "RETIRED events of "
                                + key);
                    }
                }
                StarflinkClusterIT.await("no decoded KV cached", Duration.ofSeconds(10),
                        () -> rest.operatorMetricSum(run.jobId, "kvBytesCached") == 0);
                String expired = run.docIds().get(0);
                Question late = Corpus.question("late-" + run.suffix, expired, "Lily said", 8);
                run.kafka.send(run.questionsTopic, late.getQuestionId(), late);
                StarflinkClusterIT.await("the answer to the late question", Duration.ofMinutes(1),
                        () -> run.watcher.byQuestion().containsKey(late.getQuestionId()));
                List<AnswerToken> lateAnswer = run.watcher.byQuestion().get(late.getQuestionId());
                assertEquals(1, lateAnswer.size(), "one error record: " + lateAnswer);
                assertEquals(FinishReason.ERROR, lateAnswer.get(0).getFinishReason());
                assertEquals("unknown document " + expired, lateAnswer.get(0).getError());

                StarflinkClusterIT.record("load " + DOCUMENTS + " documents x " + QUESTIONS + " questions", String.format(
                        "cap %d per subtask, cache %d bytes, TTL %s: %d questions answered (%d tokens equal) in %d ms "
                                + "(%.2f answers/s, %.1f tokens/s); loop in flight peak %d (sampled %d), admissions "
                                + "delayed %d (waited %d ms in all); kvBytesCached peak %d, kvLoadsFromState %d; heap "
                                + "peak %d MB of %d MB; failures 0, restarts 0, TaskManagers %d; %d blocks retired "
                                + "%d ms after the last answer, checkpoint state %d bytes; late question: %s",
                        CAP, CACHE_BYTES, TTL, run.questions.size(), compared, loadMs,
                        run.questions.size() * 1000.0 / loadMs, compared * 1000.0 / loadMs, peak,
                        peaks.of("in flight"), delayed, waitedMs, cachedPeak, loads, heapPeak >> 20, heapMax >> 20,
                        taskManagerIds.size(), allBlocks, retiredMs,
                        rest.latestCheckpointStateSize(run.jobId), lateAnswer.get(0).getError()));
            }
        } finally {
            run.cancel();
        }
    }
}
