package org.starflink.pipeline.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;
import org.starflink.engine.EngineException;
import org.starflink.engine.eval.RulerTasks;
import org.starflink.engine.eval.TaskInstance;
import org.starflink.engine.eval.TaskKind;
import org.starflink.engine.model.Model;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/**
 * {@code starflink task}: writes one instance of the built-in synthetic tasks (docs/tasks.md, the formats our
 * model was trained on) to files, so that a user can try the model on what it knows: ingest the context, ask the
 * question, compare with the expected answer.
 */
@Command(name = "task", mixinStandardHelpOptions = true,
        description = "Write a task instance of the built-in suite to files: context.txt, question.txt, answer.txt.")
final class TaskCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Mixin
    ModelOptions modelOptions = new ModelOptions();

    @Option(names = "--kind", paramLabel = "KIND", defaultValue = "niah_single",
            description = "One of ${COMPLETION-CANDIDATES}. Default: ${DEFAULT-VALUE}.",
            completionCandidates = Kinds.class)
    String kind;

    @Option(names = "--length", paramLabel = "TOKENS", defaultValue = "2048",
            description = "Context + question tokens (with the model's tokenizer). Default: ${DEFAULT-VALUE}.")
    int length;

    @Option(names = "--index", paramLabel = "I", defaultValue = "0",
            description = "Which instance of the held-out evaluation set. Default: ${DEFAULT-VALUE}.")
    int index;

    @Option(names = "--out", paramLabel = "DIR", defaultValue = ".",
            description = "Where to write the files (created if needed). Default: the current directory.")
    Path out;

    static final class Kinds implements Iterable<String> {
        @Override
        public java.util.Iterator<String> iterator() {
            return Arrays.stream(TaskKind.values()).map(TaskKind::id).iterator();
        }
    }

    @Override
    public Integer call() {
        TaskKind taskKind;
        try {
            taskKind = TaskKind.of(kind);
        } catch (IllegalArgumentException e) {
            throw new StarflinkCli.UsageException(e.getMessage() + "; one of " + Arrays.stream(TaskKind.values())
                    .map(TaskKind::id).collect(Collectors.joining(", ")));
        }
        if (length < 64 || index < 0) {
            throw new StarflinkCli.UsageException("need --length >= 64 and --index >= 0");
        }
        Model model = modelOptions.load();
        TaskInstance task = RulerTasks.evalInstance(taskKind, length, index,
                text -> model.tokenizer().encode(text).length);
        Path context = out.resolve("context.txt");
        Path question = out.resolve("question.txt");
        Path answer = out.resolve("answer.txt");
        try {
            Files.createDirectories(out);
            Files.writeString(context, task.context(), StandardCharsets.UTF_8);
            Files.writeString(question, task.question(), StandardCharsets.UTF_8);
            Files.writeString(answer, task.answer() + "\n", StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new EngineException("cannot write to " + out + ": " + e.getMessage());
        }
        PrintWriter printer = spec.commandLine().getOut();
        printer.printf("%s instance %d of %d tokens: %s, %s, %s (expected answer: %s)%n", taskKind.id(), index,
                length, context, question, answer, task.answer());
        printer.printf("try it:%n  starflink ingest --bootstrap-servers HOST:PORT --doc-id %s-%d %s%n"
                        + "  starflink ask --bootstrap-servers HOST:PORT --doc-id %s-%d --question-file %s%n",
                taskKind.id(), index, context, taskKind.id(), index, question);
        return 0;
    }
}
