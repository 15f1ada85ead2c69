package org.starflink.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.starflink.engine.testing.SharedModels;
import org.starflink.it.StarflinkClusterIT.Run;
import org.starflink.it.StreamingQuestionsDeterminismITCase.Answer;
import org.starflink.it.StreamingQuestionsDeterminismITCase.Asked;
import org.starflink.it.StreamingQuestionsDeterminismITCase.Log;
import org.starflink.it.cluster.ClusterProcesses;

/**
 * Issue 12, scenario 6 on the multi-process cluster ({@link StarflinkClusterIT}'s fixture, a cluster of its own):
 * the log of {@link StreamingQuestionsDeterminismITCase} (one document streamed in with explicit Kafka timestamps,
 * questions asked on time and late while it streams) into the job jar, and a TaskManager killed with kill -9 while
 * chunks are still arriving. Every answer, replays included, must carry the coverage the log gives its question and
 * the engine's Star answer over that prefix, i.e. what the failure-free MiniCluster run gives. Only with
 * {@code -Dstarflink.cluster.full=true}.
 */
class StreamingQuestionsClusterIT {
    static final Path DIR = StarflinkClusterIT.DIR.resolveSibling(StarflinkClusterIT.DIR.getFileName()
            + "-streaming-questions");

    @RegisterExtension
    static final ClusterProcesses PROCESSES = new ClusterProcesses(DIR);

    @BeforeAll
    static void startTheCluster() {
        assumeTrue(StarflinkClusterIT.FULL, "-Dstarflink.cluster.full=true runs it");
        StarflinkClusterIT.startTheCluster(PROCESSES);
    }

    @Test
    void killNineOfATaskManagerWhileQuestionsArriveWithTheirDocumentStreamingIn() throws Exception {
        killWhileQuestionsArrive(false);
    }

    /**
     * Negative control: the same run with the questions admitted by the old rule, over the blocks that exist when
     * they arrive. The job is the jar, so the test breaks the rule through its input and a job setting, as a user
     * could: the questions go out without the log's timestamps (the producer stamps them when sent, later than
     * every chunk of the log, so no chunk newer than a question ever arrives) and the job's prefix wait
     * ({@code starflink.document.prefix-wait}) is 1 ms, so each question is admitted over what exists 1 ms after it
     * arrives. Must fail on the coverage of a late question, or on a replay that saw another catalog.
     */
    @Test
    @EnabledIfSystemProperty(named = StarflinkJobITCase.NEGATIVE_CONTROLS, matches = "true")
    void negativeControlQuestionsAdmittedOverTheBlocksThatExistWhenTheyArrive() {
        AssertionError failure = assertThrows(AssertionError.class, () -> killWhileQuestionsArrive(true));
        StarflinkJobITCase.report("old admission rule on the cluster", failure);
        assertTrue(failure.getMessage().contains("coverage of the answers differs")
                || failure.getMessage().contains("replays included, has the same coverage")
                || failure.getMessage().contains("replayed with another token"), failure.getMessage());
    }

    /** @param oldAdmissionRule the negative control's break (above) */
    private void killWhileQuestionsArrive(boolean oldAdmissionRule) throws Exception {
        Log log = new Log(SharedModels.stories260K(), StarflinkClusterIT.engine);
        Run run = new Run();
        if (oldAdmissionRule) {
            run.options.put("starflink.document.prefix-wait", "1 ms");
        }
        try {
            run.submit(2, null);
            int c = log.chunks.size();
            // Right after the first late question: it (and what came after the last checkpoint) is read again after
            // the restore, with the chunks up to it already in the log; chunks still to come.
            int killAfterChunk = log.questions.get(4).sentAfterChunk();
            long gapMs = -1;
            for (int i = 0; i < c; i++) {
                run.kafka.sendAt(run.documents, log.docId, log.chunks.get(i), log.chunkTime(i));
                for (Asked asked : log.questions) {
                    if (asked.sentAfterChunk() == i) {
                        if (asked.timestamp() < log.chunkTime(i)) {
                            StreamingQuestionsDeterminismITCase.awaitBlocks(run.blockEvents, log,
                                    log.blocksAfterChunk[i], () -> { });
                        }
                        if (oldAdmissionRule) {
                            run.kafka.send(run.questionsTopic, asked.question().getQuestionId(), asked.question());
                        } else {
                            run.kafka.sendAt(run.questionsTopic, asked.question().getQuestionId(),
                                    asked.question(), asked.timestamp());
                        }
                        run.questions.put(asked.question().getQuestionId(), asked.question());
                    }
                }
                if (i == killAfterChunk) {
                    gapMs = StarflinkClusterIT.killATaskManagerAndReplaceIt(run);
                }
                Thread.sleep(300);
            }
            run.awaitAnswers(Duration.ofMinutes(4));
            Map<String, Answer> answers = StreamingQuestionsDeterminismITCase.answers(run.watcher.tokens(), true);
            StreamingQuestionsDeterminismITCase.assertAnswersFollowTheLog(log, answers);
            assertTrue(StarflinkClusterIT.rest.failureCount(run.jobId) >= 1, "the job failed over");
            long replays = run.watcher.duplicates();
            StarflinkClusterIT.record("streaming questions, kill -9 of a TaskManager after chunk " + killAfterChunk
                    + " of " + c, "failures " + StarflinkClusterIT.rest.failureCount(run.jobId) + ", restarts "
                    + run.restartsAfterAFailure() + ", kill to all tasks running " + gapMs + " ms, "
                    + answers.size() + " questions (coverage and tokens as the log gives them), "
                    + run.watcher.tokens().size() + " answer records, " + replays
                    + " replayed; blocks after each chunk " + Arrays.toString(log.blocksAfterChunk));
            assertEquals(log.questions.size(), answers.size());
        } finally {
            run.cancel();
        }
    }
}
