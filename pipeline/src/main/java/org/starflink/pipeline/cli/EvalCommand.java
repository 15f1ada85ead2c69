package org.starflink.pipeline.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import org.starflink.engine.eval.EvalMode;
import org.starflink.engine.eval.EvalRunner;
import org.starflink.engine.eval.EvalSample;
import org.starflink.engine.eval.RulerTasks;
import org.starflink.engine.eval.TaskInstance;
import org.starflink.engine.eval.TaskKind;
import org.starflink.engine.forward.Transformer;
import org.starflink.engine.model.Model;
import org.starflink.engine.star.LongContextGenerator;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/**
 * {@code starflink eval}: RULER-style tasks (docs/tasks.md) at given lengths, answered in global and Star mode
 * (blocks of N/4 and of a fixed size); prints task x length x mode -> exact-match accuracy with the Star/global
 * ratio, and Star's agreement with global at the first answer position (top-1, mean |logit difference|).
 */
@Command(name = "eval", mixinStandardHelpOptions = true,
        description = "Accuracy of Star vs global attention on synthetic long-context tasks.")
final class EvalCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Mixin
    ModelOptions modelOptions = new ModelOptions();

    @Option(names = "--tasks", paramLabel = "LIST", defaultValue = "niah_single,niah_multikey,niah_multivalue,"
            + "niah_multiquery,vt,cwe", split = ",", description = "Task kinds. Default: ${DEFAULT-VALUE}.")
    List<String> tasks;

    @Option(names = "--lengths", paramLabel = "LIST", defaultValue = "2048,4096", split = ",",
            description = "Context lengths in tokens. Default: ${DEFAULT-VALUE}.")
    List<Integer> lengths;

    @Option(names = "--samples", paramLabel = "N", defaultValue = "5", description = "Instances per cell.")
    int samples;

    @Option(names = "--first-sample", paramLabel = "K", defaultValue = "0",
            description = "Index of the first held-out instance of each cell (instances K .. K+N-1), to extend an "
                    + "earlier run with new instances. Default: ${DEFAULT-VALUE}.")
    int firstSample;

    @Option(names = "--block-size", paramLabel = "B", defaultValue = "1024",
            description = "The fixed Star block size (Star with N/4 always runs too). Default: ${DEFAULT-VALUE}.")
    int fixedBlock;

    @Option(names = "--max-new-tokens", paramLabel = "N", defaultValue = "48")
    int maxNewTokens;

    @Option(names = "--allow-beyond-window",
            description = "Evaluate lengths beyond the model's trained context window (e.g. stories260K's 512).")
    boolean allowBeyondWindow;

    @Option(names = "--json", paramLabel = "FILE", description = "Also write the results as JSON.")
    Path json;

    @Option(names = "--csv", paramLabel = "FILE", description = "Also write the results as CSV.")
    Path csv;

    @Override
    public Integer call() throws IOException {
        if (samples < 1 || fixedBlock < 1 || maxNewTokens < 1 || lengths.stream().anyMatch(l -> l < 16)) {
            throw new StarflinkCli.UsageException("--samples, --block-size, --max-new-tokens must be >= 1 and "
                    + "--lengths >= 16");
        }
        if (firstSample < 0) {
            throw new StarflinkCli.UsageException("--first-sample must be >= 0, got " + firstSample);
        }
        List<TaskKind> kinds = new ArrayList<>();
        for (String task : tasks) {
            try {
                kinds.add(TaskKind.of(task.trim()));
            } catch (IllegalArgumentException e) {
                throw new StarflinkCli.UsageException(e.getMessage());
            }
        }
        Model model = modelOptions.load();
        int longest = lengths.stream().mapToInt(Integer::intValue).max().orElse(0);
        if (!allowBeyondWindow && longest + maxNewTokens > model.config().maxPositions()) {
            throw new org.starflink.engine.EngineException("length " + longest + " + " + maxNewTokens
                    + " new tokens exceeds the model's context window of " + model.config().maxPositions()
                    + " (--allow-beyond-window to run past it)");
        }
        LongContextGenerator generator = new LongContextGenerator(model,
                new Transformer(modelOptions.backend(model)));
        List<EvalSample> evalSamples = new ArrayList<>();
        Map<String, TaskKind> kindsById = new HashMap<>();
        for (TaskKind kind : kinds) {
            kindsById.put(kind.id(), kind);
            for (int length : lengths) {
                for (int i = firstSample; i < firstSample + samples; i++) {
                    TaskInstance instance = RulerTasks.evalInstance(kind, length, i,
                            text -> model.tokenizer().encode(text).length);
                    evalSamples.add(new EvalSample(kind.id(), length, instance.context(), instance.question(),
                            instance.answer()));
                }
            }
        }
        List<EvalMode> modes = List.of(EvalMode.GLOBAL, EvalMode.STAR_QUARTER, EvalMode.starFixed(fixedBlock));
        PrintWriter err = spec.commandLine().getErr();
        List<EvalRunner.Cell> cells = new EvalRunner(model, generator, maxNewTokens,
                (sample, generated) -> RulerTasks.exactMatch(kindsById.get(sample.task()), generated,
                        sample.answer()))
                .run(evalSamples, modes, line -> err.println(line));
        print(cells, spec.commandLine().getOut());
        if (json != null) {
            Files.writeString(json, JsonOutput.MAPPER.writerWithDefaultPrettyPrinter().writeValueAsString(
                    toJson(cells)));
        }
        if (csv != null) {
            List<String> lines = new ArrayList<>();
            lines.add("task,length,mode,samples,accuracy,star_over_global,top1_agreement,mean_abs_logit_diff");
            for (EvalRunner.Cell c : cells) {
                lines.add(String.format(Locale.ROOT, "%s,%d,%s,%d,%.4f,%s,%.4f,%.6f", c.task, c.length, c.mode,
                        c.samples(), c.accuracy(), ratio(cells, c), c.top1Agreement(), c.meanAbsLogitDiff()));
            }
            Files.write(csv, lines);
        }
        return 0;
    }

    /** Star accuracy / global accuracy in the same (task, length); "-" when global scored 0 or for global. */
    private static String ratio(List<EvalRunner.Cell> cells, EvalRunner.Cell cell) {
        if (cell.mode.equals(EvalMode.GLOBAL.name())) {
            return "-";
        }
        for (EvalRunner.Cell c : cells) {
            if (c.task.equals(cell.task) && c.length == cell.length && c.mode.equals(EvalMode.GLOBAL.name())) {
                return c.accuracy() == 0 ? "-" : String.format(Locale.ROOT, "%.2f", cell.accuracy() / c.accuracy());
            }
        }
        return "-";
    }

    private static void print(List<EvalRunner.Cell> cells, PrintWriter out) {
        out.printf("%-16s %7s %-10s %7s %9s %11s %8s %14s%n", "task", "length", "mode", "samples", "accuracy",
                "star/global", "top1=", "mean|dlogit|");
        for (EvalRunner.Cell c : cells) {
            out.printf(Locale.ROOT, "%-16s %7d %-10s %7d %8.1f%% %11s %7.0f%% %14.4f%n", c.task, c.length, c.mode,
                    c.samples(), 100 * c.accuracy(), ratio(cells, c), 100 * c.top1Agreement(),
                    c.meanAbsLogitDiff());
        }
    }

    private static ArrayNode toJson(List<EvalRunner.Cell> cells) {
        ArrayNode array = JsonOutput.MAPPER.createArrayNode();
        for (EvalRunner.Cell c : cells) {
            ObjectNode node = array.addObject();
            node.put("task", c.task);
            node.put("length", c.length);
            node.put("mode", c.mode);
            node.put("samples", c.samples());
            node.put("accuracy", c.accuracy());
            node.put("top1_agreement", c.top1Agreement());
            node.put("mean_abs_logit_diff", c.meanAbsLogitDiff());
        }
        return array;
    }
}
