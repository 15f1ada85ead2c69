package org.starflink.pipeline.cli;

import java.util.List;
import org.starflink.engine.eval.RulerTasks;
import org.starflink.engine.eval.TaskInstance;
import org.starflink.engine.eval.TaskKind;
import org.starflink.engine.model.Model;

/**
 * The demo of {@code starflink run}: documents in the task formats of docs/tasks.md (the ones our model was
 * trained on), each with a question and the answer it should get.
 */
final class DemoDocument {
    record Demo(String docId, String text, String question, String answer) {
    }

    private DemoDocument() {
    }

    /** A needle in a 2K-token haystack and planted facts about people in 1K tokens, counted by the model. */
    static List<Demo> create(Model model) {
        return List.of(demo("demo-needle", TaskKind.NIAH_SINGLE, 2048, model),
                demo("demo-facts", TaskKind.QA, 1024, model));
    }

    private static Demo demo(String docId, TaskKind kind, int length, Model model) {
        TaskInstance task = RulerTasks.evalInstance(kind, length, 0, text -> model.tokenizer().encode(text).length);
        return new Demo(docId, task.context(), task.question(), task.answer());
    }
}
