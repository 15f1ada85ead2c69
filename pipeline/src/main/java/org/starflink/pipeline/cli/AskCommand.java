package org.starflink.pipeline.cli;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.Callable;
import org.starflink.engine.EngineException;
import org.starflink.pipeline.client.StarflinkClient;
import org.starflink.schemas.AnswerToken;
import org.starflink.schemas.Coverage;
import org.starflink.schemas.Question;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/**
 * {@code starflink ask}: asks a question about a document and prints the answer as its tokens stream in (stdout:
 * the answer only); then, on stderr, what the answer covered and how fast it came.
 */
@Command(name = "ask", mixinStandardHelpOptions = true,
        description = "Ask a question about a document; the answer streams in token by token.")
final class AskCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Mixin
    KafkaOptions kafka = new KafkaOptions();

    @Option(names = "--doc-id", paramLabel = "ID", required = true)
    String docId;

    @Option(names = "--question-id", paramLabel = "ID", description = "Default: a random UUID.")
    String questionId;

    @Mixin
    SamplingOptions sampling = new SamplingOptions();

    @Option(names = "--wait-complete", paramLabel = "SECONDS", defaultValue = "0",
            description = "If the document is still streaming in (or not there yet), wait up to this long for all "
                    + "of it before answering; then the answer is an error. Default: 0, answer over the blocks "
                    + "present now.")
    long waitCompleteSeconds;

    @Option(names = "--timeout", paramLabel = "SECONDS", defaultValue = "300",
            description = "Give up when the answer is not complete this long after it could start (after "
                    + "--wait-complete). Default: ${DEFAULT-VALUE}.")
    long timeoutSeconds;

    @ArgGroup(multiplicity = "1")
    QuestionText question;

    static final class QuestionText {
        @Parameters(paramLabel = "QUESTION", arity = "1", description = "The question.")
        String text;

        @Option(names = "--question-file", paramLabel = "FILE", required = true,
                description = "Read the question from a UTF-8 file, exactly (e.g. question.txt of starflink task).")
        Path file;

        String read() {
            return file != null ? GenerateCommand.read(file) : text;
        }
    }

    @Override
    public Integer call() {
        sampling.params(); // validates the numbers before anything is sent
        if (waitCompleteSeconds < 0 || timeoutSeconds < 1) {
            throw new StarflinkCli.UsageException("need --wait-complete >= 0 and --timeout >= 1");
        }
        if (questionId != null && questionId.isEmpty()) {
            throw new StarflinkCli.UsageException("--question-id must not be empty (the job rejects such questions)");
        }
        Question q = Question.newBuilder()
                .setQuestionId(questionId != null ? questionId : UUID.randomUUID().toString())
                .setDocId(docId).setText(question.read()).setMaxNewTokens(sampling.maxNewTokens)
                .setTemperature((float) sampling.temperature).setTopP((float) sampling.topP).setSeed(sampling.seed)
                .setStop(List.copyOf(sampling.stop)).setWaitCompleteMs(waitCompleteSeconds * 1000).build();
        PrintWriter out = spec.commandLine().getOut();
        long[] sent = {System.nanoTime()};
        long[] firstTokenNanos = {0};
        try (StarflinkClient client = kafka.client()) {
            AnswerToken last = client.ask(q, () -> sent[0] = System.nanoTime(), token -> {
                if (firstTokenNanos[0] == 0) {
                    firstTokenNanos[0] = System.nanoTime();
                }
                out.print(token.getText());
                out.flush();
            }, Duration.ofSeconds(waitCompleteSeconds + timeoutSeconds));
            out.println();
            if (last.getError() != null) {
                throw new EngineException(last.getError());
            }
            double ttft = (firstTokenNanos[0] - sent[0]) / 1e6;
            int tokens = last.getIndex() + 1;
            spec.commandLine().getErr().printf("[%d tokens, %s; %s; time to first token %.0f ms, %.1f tokens/s "
                            + "after]%n", tokens, String.valueOf(last.getFinishReason()).toLowerCase(),
                    describe(last.getCoverage()), ttft,
                    tokens > 1 ? (tokens - 1) * 1e9 / (System.nanoTime() - firstTokenNanos[0]) : 0.0);
        }
        return 0;
    }

    /** What the answer covered, in words: the whole document, or a warning that it saw only a part. */
    static String describe(Coverage coverage) {
        if (coverage == null) {
            return "coverage not reported by the job";
        }
        String span = String.format("%d blocks (%d tokens) of version %d", coverage.getBlocks(),
                coverage.getTokens(), coverage.getVersion());
        return coverage.getDocumentComplete() ? "over all " + span + ", the whole document"
                : "WARNING: the document was still streaming in; this answer covers only its first " + span
                + " (--wait-complete waits for all of it)";
    }
}
