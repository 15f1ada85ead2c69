package org.starflink.pipeline.cli;

import java.time.Duration;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.Callable;
import org.starflink.engine.EngineException;
import org.starflink.pipeline.client.StarflinkClient;
import org.starflink.schemas.AnswerToken;
import org.starflink.schemas.Question;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/** {@code starflink ask}: asks a question about a document and prints the answer as its tokens stream in. */
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

    @Option(names = "--timeout", paramLabel = "SECONDS", defaultValue = "300")
    long timeoutSeconds;

    @Parameters(paramLabel = "QUESTION", arity = "1")
    String text;

    @Override
    public Integer call() {
        sampling.params(); // validates the numbers before anything is sent
        Question question = Question.newBuilder()
                .setQuestionId(questionId != null ? questionId : UUID.randomUUID().toString())
                .setDocId(docId).setText(text).setMaxNewTokens(sampling.maxNewTokens)
                .setTemperature((float) sampling.temperature).setTopP((float) sampling.topP).setSeed(sampling.seed)
                .setStop(List.copyOf(sampling.stop)).build();
        var out = spec.commandLine().getOut();
        long sent = System.nanoTime();
        long[] firstTokenNanos = {0};
        try (StarflinkClient client = kafka.client()) {
            AnswerToken last = client.ask(question, token -> {
                if (firstTokenNanos[0] == 0) {
                    firstTokenNanos[0] = System.nanoTime();
                }
                out.print(token.getText());
                out.flush();
            }, Duration.ofSeconds(timeoutSeconds));
            out.println();
            if (last.getError() != null) {
                throw new EngineException(last.getError());
            }
            double ttft = (firstTokenNanos[0] - sent) / 1e6;
            int tokens = last.getIndex() + 1;
            spec.commandLine().getErr().printf("[%d tokens, %s; time to first token %.0f ms, %.1f tokens/s after]%n",
                    tokens, String.valueOf(last.getFinishReason()).toLowerCase(), ttft,
                    tokens > 1 ? (tokens - 1) * 1e9 / (System.nanoTime() - firstTokenNanos[0]) : 0.0);
        }
        return 0;
    }
}
