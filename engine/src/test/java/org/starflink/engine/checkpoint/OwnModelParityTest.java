package org.starflink.engine.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.starflink.engine.backend.Backend;
import org.starflink.engine.backend.BackendKind;
import org.starflink.engine.eval.RulerTasks;
import org.starflink.engine.eval.TaskInstance;
import org.starflink.engine.eval.TaskKind;
import org.starflink.engine.backend.Arena;
import org.starflink.engine.backend.KvCache;
import org.starflink.engine.backend.KvPrecision;
import org.starflink.engine.forward.Transformer;
import org.starflink.engine.generate.Sampler;
import org.starflink.engine.model.Model;
import org.starflink.engine.testing.Passes;

/**
 * Our own model (models/starflink-synth-14m, BF16, two shards) loaded by the engine gives the logits that Hugging
 * Face transformers' LlamaForCausalLM computed from the same files (reference/hf_logits.json, made on the GPU
 * machine by training/hf_export.py): every position's argmax, the last position's full row and 64 logits at
 * sampled positions, for prompts of 16 to 1996 tokens: within 2e-4 with float32 KV (observed 1.02e-4; the model
 * card says "about 1e-4"), within 3.5e-2 with BF16 KV (observed 3.3e-2; docs/design.md says so).
 */
class OwnModelParityTest {
    private static final double TOLERANCE = 2e-4;
    /**
     * With BF16 KV (the job's default) keys and values carry a relative rounding error of up to 2^-9, which moves
     * the logits of this model by up to BF16_TOLERANCE (measured: see the printed line) against float32
     * transformers. Argmax agreement is then checked at the positions whose top-2 gap exceeds NEAR_TIE_GAP.
     */
    private static final double BF16_TOLERANCE = 3.5e-2;
    private static final double NEAR_TIE_GAP = 0.1;

    @Test
    void engineMatchesTransformersOnOurModel() throws IOException {
        parity(KvPrecision.F32, TOLERANCE);
    }

    @Test
    void engineWithBf16KvStaysCloseToTransformers() throws IOException {
        parity(KvPrecision.BF16, BF16_TOLERANCE);
    }

    private void parity(KvPrecision precision, double tolerance) throws IOException {
        Path dir = Path.of(System.getProperty("starflink.project.dir", ".."), "models/starflink-synth-14m");
        JsonNode reference = new ObjectMapper().readTree(dir.resolve("reference/hf_logits.json").toFile());
        Model model = ModelRegistry.model(dir, null);
        Backend backend = ModelRegistry.backend(model, BackendKind.DJL, precision);
        Transformer transformer = new Transformer(backend);
        double worst = 0;
        int positionsChecked = 0;
        int nearTies = 0;
        int nearTieFlips = 0;
        for (JsonNode prompt : reference.get("prompts")) {
            int[] tokens = ints(prompt.get("token_ids"));
            float[] logits; // [T, vocab]
            try (KvCache cache = backend.newKvCache(tokens.length); Arena arena = new Arena()) {
                logits = backend.logits(transformer.hidden(arena, tokens, Transformer.range(0, tokens.length),
                        List.of(), cache));
            }
            int vocab = model.config().vocabSize();
            int[] argmax = ints(prompt.get("argmax_ids"));
            for (int t = 0; t < tokens.length; t++) {
                float[] row = Arrays.copyOfRange(logits, t * vocab, (t + 1) * vocab);
                if (precision == KvPrecision.BF16 && Passes.topTwoGap(row) <= NEAR_TIE_GAP) {
                    nearTies++; // within rounding of a tie: either answer is the same model
                    nearTieFlips += argmax[t] == Sampler.argmax(row) ? 0 : 1;
                    continue;
                }
                positionsChecked++;
                assertEquals(argmax[t], Sampler.argmax(row), prompt.get("name").asText() + " position " + t);
            }
            worst = Math.max(worst, maxDiff(logits, (tokens.length - 1) * vocab, prompt.get("last_logits")));
            JsonNode positions = prompt.get("sampled_positions");
            for (int i = 0; i < positions.size(); i++) {
                worst = Math.max(worst, maxDiff(logits, positions.get(i).asInt() * vocab,
                        prompt.get("sampled_logits_first64").get(i)));
            }
        }
        assertTrue(worst <= tolerance, precision + " KV: max |logit - transformers| = " + worst);
        System.out.printf("OwnModelParityTest: %s KV: max |logit - transformers| = %.2e; argmax equal at %d "
                + "positions, %d near-ties (top-2 gap <= %.2f) skipped, %d of them flipped%n", precision, worst,
                positionsChecked, nearTies, NEAR_TIE_GAP, nearTieFlips);
    }

    /**
     * The reference prompts were built in Python (training/hf_export.py: tasks.build + the shipped tokenizer.json);
     * the engine's tokenizer and RulerTasks must give the same ids, so the tokenizer's number splitting (groups of up
     * to 3 digits through a Split pre-tokenizer) is the one the model was trained with.
     */
    @Test
    void engineTokenizerAndTasksReproduceThePythonPrompts() throws IOException {
        Path dir = Path.of(System.getProperty("starflink.project.dir", ".."), "models/starflink-synth-14m");
        JsonNode reference = new ObjectMapper().readTree(dir.resolve("reference/hf_logits.json").toFile());
        Model model = ModelRegistry.model(dir, null);
        Object[][] built = {{"qa_256", TaskKind.QA, 256, 424243L}, {"vt_1000", TaskKind.VT, 1000, 424244L},
                {"niah_single_2000", TaskKind.NIAH_SINGLE, 2000, 424245L}};
        for (Object[] b : built) {
            TaskInstance instance = RulerTasks.build((TaskKind) b[1], (Integer) b[2], (Long) b[3],
                    text -> model.tokenizer().encode(text).length);
            int[] context = model.tokenizer().encode(instance.context());
            int[] question = model.tokenizer().encode(instance.question());
            int[] ids = new int[1 + context.length + question.length];
            ids[0] = model.config().bosId();
            System.arraycopy(context, 0, ids, 1, context.length);
            System.arraycopy(question, 0, ids, 1 + context.length, question.length);
            JsonNode prompt = null;
            for (JsonNode p : reference.get("prompts")) {
                if (p.get("name").asText().equals(b[0])) {
                    prompt = p;
                }
            }
            assertArrayEquals(ints(prompt.get("token_ids")), ids, (String) b[0]);
        }
    }

    private static double maxDiff(float[] logits, int offset, JsonNode expected) {
        double worst = 0;
        for (int i = 0; i < expected.size(); i++) {
            worst = Math.max(worst, Math.abs(logits[offset + i] - expected.get(i).asDouble()));
        }
        return worst;
    }

    private static int[] ints(JsonNode array) {
        int[] values = new int[array.size()];
        for (int i = 0; i < values.length; i++) {
            values[i] = array.get(i).asInt();
        }
        return values;
    }
}
