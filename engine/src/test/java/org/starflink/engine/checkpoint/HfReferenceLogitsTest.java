package org.starflink.engine.checkpoint;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.starflink.engine.backend.Backend;
import org.starflink.engine.backend.ReferenceBackend;
import org.starflink.engine.backend.djl.DjlBackend;
import org.starflink.engine.backend.KvCache;
import org.starflink.engine.backend.KvPrecision;
import org.starflink.engine.forward.Transformer;
import org.starflink.engine.model.Model;
import org.starflink.engine.testing.FloatFormat;
import org.starflink.engine.testing.RandomHfCheckpoint;
import org.starflink.engine.tokenizer.HfTokenizer;

/**
 * The Hugging Face path end to end: random checkpoints written by {@link RandomHfCheckpoint}, loaded by
 * {@link HfCheckpoint} and run by the reference forward pass, must give the logits that transformers computes
 * for the same files (resources hf-reference/logits.json, made by hf-reference/make_logits.py). Catches wrong
 * RoPE pairing, llama3 scaling, GQA head mapping, bias or tied-head handling. The DJL backend must match the
 * reference on the same loaded checkpoint.
 */
class HfReferenceLogitsTest {
    /** float32 on both sides; observed differences are about 1e-6 on logits of magnitude up to 3. */
    private static final double TOLERANCE = 1e-4;

    @TempDir
    Path dir;

    /** The checkpoints make_logits.py was run on; java.util.Random makes them identical on every JVM. */
    static RandomHfCheckpoint.Builder checkpoint(String name) {
        return switch (name) {
            case "llama3-gqa-bf16" -> RandomHfCheckpoint.builder()
                    .llama3Scaling(true).dim(64).heads(8).kvHeads(2).hidden(96).layers(3);
            case "qwen2-f16-tied" -> RandomHfCheckpoint.builder().architecture("Qwen2ForCausalLM").qkvBias(true)
                    .tied(true).format(FloatFormat.F16).sharded(false);
            default -> throw new IllegalArgumentException(name);
        };
    }

    @ParameterizedTest
    @ValueSource(strings = {"llama3-gqa-bf16", "qwen2-f16-tied"})
    void matchesTransformers(String name) throws IOException {
        JsonNode reference = reference();
        int[] tokens = new ObjectMapper().treeToValue(reference.get("tokens"), int[].class);
        JsonNode expected = reference.get("logits").get(name);
        checkpoint(name).writeTo(dir);

        Model model = HfCheckpoint.load(dir, null);
        ((HfTokenizer) model.tokenizer()).close();
        float[] logits = lastLogits(new ReferenceBackend(model.config(), model.weights(), KvPrecision.F32), tokens);
        try (DjlBackend djl = new DjlBackend(model.config(), model.weights(), KvPrecision.F32)) {
            // The engine's CPU backend against the pure-Java reference on the same loaded checkpoint.
            float[] engine = lastLogits(djl, tokens);
            double diff = org.starflink.engine.testing.RandomModels.maxAbsDiff(logits, engine);
            assertTrue(diff <= TOLERANCE, name + ": max |DJL - reference| = " + diff);
        }

        assertEquals(expected.size(), logits.length);
        double worst = 0;
        for (int i = 0; i < logits.length; i++) {
            worst = Math.max(worst, Math.abs(logits[i] - expected.get(i).asDouble()));
        }
        double finalWorst = worst;
        assertTrue(worst <= TOLERANCE, () -> name + ": max |logit - transformers| = " + finalWorst);
    }

    private static float[] lastLogits(Backend backend, int[] tokens) {
        Transformer transformer = new Transformer(backend);
        try (KvCache cache = backend.newKvCache(tokens.length)) {
            return transformer.forward(tokens, Transformer.range(0, tokens.length), List.of(), cache, true);
        }
    }

    private static JsonNode reference() throws IOException {
        try (InputStream in = HfReferenceLogitsTest.class.getResourceAsStream("/hf-reference/logits.json")) {
            return new ObjectMapper().readTree(in);
        }
    }
}
