package org.starflink.gpu;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.File;
import java.nio.file.Path;
import java.util.List;
import org.starflink.engine.backend.Arena;
import org.starflink.engine.backend.Backend;
import org.starflink.engine.backend.BackendKind;
import org.starflink.engine.backend.KvCache;
import org.starflink.engine.backend.KvPrecision;
import org.starflink.engine.checkpoint.ModelRegistry;
import org.starflink.engine.eval.EvalMode;
import org.starflink.engine.eval.RulerTasks;
import org.starflink.engine.eval.TaskInstance;
import org.starflink.engine.eval.TaskKind;
import org.starflink.engine.forward.Transformer;
import org.starflink.engine.model.Model;
import org.starflink.engine.star.LongContextGenerator;

/**
 * Writes what the CPU engine (DJL, BF16 KV: the job's default) computes for the GPU comparisons of
 * {@link GpuCheck}, so that the GPU machine, which has no libtorch, compares against it: the token ids and greedy
 * answers of `starflink eval` instances in global and Star (N/4) mode, and the logits of the HF parity prompts.
 * Usage: GpuReferenceExport OUT.json [instances per task and length]
 */
public final class GpuReferenceExport {
    static final int[] LENGTHS = {2048, 4096};
    static final int MAX_NEW_TOKENS = 24;

    public static void main(String[] args) throws Exception {
        int perCell = args.length > 1 ? Integer.parseInt(args[1]) : 2;
        Path dir = Path.of("models/starflink-synth-14m");
        Model model = ModelRegistry.model(dir, null);
        Backend backend = ModelRegistry.backend(model, BackendKind.DJL, KvPrecision.BF16);
        Transformer transformer = new Transformer(backend);
        LongContextGenerator generator = new LongContextGenerator(model, transformer);
        ObjectMapper json = new ObjectMapper();
        ObjectNode root = json.createObjectNode();
        root.put("backend", backend.name() + " (" + backend.kvPrecision() + " KV)");
        root.put("max_new_tokens", MAX_NEW_TOKENS);
        ArrayNode instances = root.putArray("instances");
        for (TaskKind kind : TaskKind.values()) {
            for (int length : LENGTHS) {
                for (int i = 0; i < perCell; i++) {
                    TaskInstance instance = RulerTasks.evalInstance(kind, length, i,
                            text -> model.tokenizer().encode(text).length);
                    int[] context = generator.contextTokens(instance.context());
                    int[] question = generator.questionTokens(instance.question());
                    ObjectNode node = instances.addObject();
                    node.put("task", kind.id());
                    node.put("length", length);
                    node.put("index", i);
                    node.set("context_ids", json.valueToTree(context));
                    node.set("question_ids", json.valueToTree(question));
                    for (EvalMode mode : List.of(EvalMode.GLOBAL, EvalMode.STAR_QUARTER)) {
                        GreedyRun run = GreedyRun.of(generator, model.config().eosIds(), context, question,
                                mode.layout(context.length), MAX_NEW_TOKENS);
                        node.put(mode.name() + "_block_size", mode.layout(context.length).blockSize());
                        node.set(mode.name() + "_tokens", json.valueToTree(run.tokens()));
                        node.set(mode.name() + "_top2_gaps", json.valueToTree(run.topTwoGaps()));
                    }
                    System.err.printf("%s @%d #%d: %d context tokens%n", kind.id(), length, i, context.length);
                }
            }
        }
        JsonNode reference = json.readTree(dir.resolve("reference/hf_logits.json").toFile());
        ArrayNode prompts = root.putArray("prompts");
        for (JsonNode prompt : reference.get("prompts")) {
            int[] tokens = json.treeToValue(prompt.get("token_ids"), int[].class);
            float[] logits;
            try (KvCache cache = backend.newKvCache(tokens.length); Arena arena = new Arena()) {
                logits = backend.logits(transformer.hidden(arena, tokens, Transformer.range(0, tokens.length),
                        List.of(), cache));
            }
            int vocab = model.config().vocabSize();
            ObjectNode node = prompts.addObject();
            node.put("name", prompt.get("name").asText());
            node.set("last_logits", json.valueToTree(java.util.Arrays.copyOfRange(logits, logits.length - vocab,
                    logits.length)));
        }
        json.writeValue(new File(args[0]), root);
        System.err.println("wrote " + args[0]);
    }
}
