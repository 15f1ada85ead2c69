package org.starflink.engine.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.starflink.engine.backend.BackendKind;
import org.starflink.engine.checkpoint.ModelRegistry;
import org.starflink.engine.forward.Transformer;
import org.starflink.engine.model.Model;
import org.starflink.engine.star.LongContextGenerator;

/**
 * The shipped model retrieves through the engine: held-out 2K-token needle instances (the first ones of
 * {@code starflink eval}) are answered exactly with global attention and with Star Attention (blocks of N/4 and of
 * 256 tokens, i.e. 4 and 8 blocks merged by log-sum-exp). A model that cannot retrieve, or a Star path that loses
 * the needle's block, fails this; a model that merely agrees with itself does not pass it.
 */
class OwnModelRetrievalTest {
    @Test
    void shippedModelFindsNeedlesUnderGlobalAndStarAttention() {
        Path dir = Path.of(System.getProperty("starflink.project.dir", ".."), "models/starflink-synth-14m");
        Model model = ModelRegistry.model(dir, null);
        LongContextGenerator generator = new LongContextGenerator(model,
                new Transformer(ModelRegistry.backend(model, BackendKind.DJL)));
        List<EvalSample> samples = new ArrayList<>();
        for (TaskKind kind : List.of(TaskKind.NIAH_SINGLE, TaskKind.NIAH_MULTIKEY)) {
            for (int i = 0; i < 2; i++) {
                TaskInstance instance = RulerTasks.evalInstance(kind, 2048, i,
                        text -> model.tokenizer().encode(text).length);
                samples.add(new EvalSample(kind.id(), 2048, instance.context(), instance.question(),
                        instance.answer()));
            }
        }
        List<EvalRunner.Cell> cells = new EvalRunner(model, generator, 16,
                (sample, generated) -> RulerTasks.exactMatch(TaskKind.of(sample.task()), generated, sample.answer()))
                .run(samples, List.of(EvalMode.GLOBAL, EvalMode.STAR_QUARTER, EvalMode.starFixed(256)),
                        System.out::println);
        assertEquals(2 * 3, cells.size());
        for (EvalRunner.Cell cell : cells) {
            assertEquals(1.0, cell.accuracy(), cell.task + " " + cell.mode + ": exact match over " + cell.samples());
        }
    }
}
