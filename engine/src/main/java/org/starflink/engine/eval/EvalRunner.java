package org.starflink.engine.eval;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Consumer;
import org.starflink.engine.generate.GenerationResult;
import org.starflink.engine.generate.Generator;
import org.starflink.engine.generate.SamplingParams;
import org.starflink.engine.generate.Sampler;
import org.starflink.engine.generate.FirstLogitsSession;
import org.starflink.engine.model.Model;
import org.starflink.engine.star.EncodedContext;
import org.starflink.engine.star.LongContextGenerator;

/**
 * Runs samples in every mode (greedy) and scores them: exact match per (task, length, mode), and for each Star
 * mode its agreement with global at the first answer position (top-1 agreement, mean |logit difference|).
 */
public final class EvalRunner {
    private final Model model;
    private final LongContextGenerator generator;
    private final int maxNewTokens;
    private final java.util.function.BiPredicate<EvalSample, String> exactMatch;

    /** Scores of one (task, length, mode) cell. */
    public static final class Cell {
        public final String task;
        public final int length;
        public final String mode;
        int samples;
        int correct;
        int top1Agreements;
        double logitDiffSum;

        Cell(String task, int length, String mode) {
            this.task = task;
            this.length = length;
            this.mode = mode;
        }

        public int samples() {
            return samples;
        }

        public double accuracy() {
            return samples == 0 ? 0 : (double) correct / samples;
        }

        /** Share of samples whose first answer token agrees with global (1 for global itself). */
        public double top1Agreement() {
            return samples == 0 ? 0 : (double) top1Agreements / samples;
        }

        public double meanAbsLogitDiff() {
            return samples == 0 ? 0 : logitDiffSum / samples;
        }
    }

    /** @param exactMatch whether the generated text answers the sample (the task's own normalization) */
    public EvalRunner(Model model, LongContextGenerator generator, int maxNewTokens,
                      java.util.function.BiPredicate<EvalSample, String> exactMatch) {
        this.model = model;
        this.generator = generator;
        this.maxNewTokens = maxNewTokens;
        this.exactMatch = exactMatch;
    }

    /**
     * @param modes    the first must be {@link EvalMode#GLOBAL}: the reference of the agreement metrics
     * @param progress called with a line after every sample
     */
    public List<Cell> run(List<EvalSample> samples, List<EvalMode> modes, Consumer<String> progress) {
        if (modes.isEmpty() || !modes.get(0).equals(EvalMode.GLOBAL)) {
            throw new IllegalArgumentException("the first mode must be global");
        }
        Map<String, Cell> cells = new LinkedHashMap<>();
        int done = 0;
        for (EvalSample sample : samples) {
            int[] context = generator.contextTokens(sample.context());
            int[] question = generator.questionTokens(sample.question());
            float[] globalLogits = null;
            StringBuilder line = new StringBuilder();
            for (EvalMode mode : modes) {
                GenerationResult result;
                float[] logits;
                try (EncodedContext encoded = generator.encode(context, mode.layout(context.length));
                     FirstLogitsSession session = new FirstLogitsSession(
                             generator.session(encoded, question.length + maxNewTokens))) {
                    result = new Generator(model.tokenizer(), model.config().eosIds())
                            .generate(session, question, SamplingParams.greedy(maxNewTokens), t -> { });
                    logits = session.firstLogits();
                }
                Cell cell = cells.computeIfAbsent(sample.task() + "|" + sample.length() + "|" + mode.name(),
                        k -> new Cell(sample.task(), sample.length(), mode.name()));
                boolean correct = exactMatch.test(sample, result.text());
                cell.samples++;
                cell.correct += correct ? 1 : 0;
                if (globalLogits == null) {
                    globalLogits = logits;
                }
                cell.top1Agreements += Sampler.argmax(logits) == Sampler.argmax(globalLogits) ? 1 : 0;
                cell.logitDiffSum += meanAbsDiff(logits, globalLogits);
                line.append(String.format(Locale.ROOT, " %s=%s", mode.name(), correct ? "ok" : "miss"));
            }
            done++;
            progress.accept(String.format(Locale.ROOT, "[%d/%d] %s @%d (%d tokens):%s", done, samples.size(),
                    sample.task(), sample.length(), context.length, line));
        }
        return new ArrayList<>(cells.values());
    }

    private static double meanAbsDiff(float[] a, float[] b) {
        double sum = 0;
        for (int i = 0; i < a.length; i++) {
            sum += Math.abs(a[i] - b[i]);
        }
        return sum / a.length;
    }
}
