package org.starflink.engine.generate;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.stream.IntStream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.starflink.engine.backend.BackendKind;
import org.starflink.engine.backend.KvPrecision;
import org.starflink.engine.checkpoint.ModelRegistry;
import org.starflink.engine.forward.Transformer;
import org.starflink.engine.model.Model;
import org.starflink.engine.testing.SharedModels;

/** stories260K against the outputs of llama2.c's run.c and an independent float64 implementation. */
class Stories260KReferenceTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    private static Generator generator(Model model) {
        return new Generator(model.tokenizer(), model.config().eosIds());
    }

    @ParameterizedTest
    @EnumSource(value = BackendKind.class, names = {"DJL", "REFERENCE"}) // the CPU backends; GpuCheck runs the GPU
    void greedyFromBosReproducesRunC(BackendKind kind) throws Exception {
        Model model = SharedModels.stories260K();
        String expected = Files.readString(SharedModels.stories260KDir()
                .resolve("reference/greedy_t0_256steps_runc.txt"), StandardCharsets.UTF_8);
        Transformer transformer = new Transformer(ModelRegistry.backend(model, kind, KvPrecision.F32));
        int bos = model.config().bosId();
        // run.c with 256 steps: 256 forward passes from BOS at position 0, each printing its sampled token,
        // stopping early if BOS recurs.
        GenerationResult result = generator(model).generate(new GlobalSession(transformer, 256), new int[] {bos},
                SamplingParams.greedy(256), token -> { });
        int[] sequence = IntStream.concat(IntStream.of(bos), IntStream.of(result.tokens())).toArray();
        String text = model.tokenizer().decode(sequence);
        assertEquals(256, result.tokens().length);
        // The file is run.c's stdout: the text, run.c's closing newline, and the capture's newline.
        assertEquals(expected, text + "\n\n");
    }

    @ParameterizedTest
    @EnumSource(value = BackendKind.class, names = {"DJL", "REFERENCE"}) // the CPU backends; GpuCheck runs the GPU
    void onceUponATimeMatchesFloat64Reference(BackendKind kind) throws Exception {
        JsonNode reference = JSON.readTree(SharedModels.stories260KDir()
                .resolve("reference/once_upon_a_time.json").toFile());
        Model model = SharedModels.stories260K();
        int[] prompt = IntStream.concat(IntStream.of(model.config().bosId()),
                IntStream.of(model.tokenizer().encode(reference.get("prompt").asText()))).toArray();
        assertArrayEquals(ints(reference.get("prompt_tokens_with_bos")), prompt);

        Transformer transformer = new Transformer(ModelRegistry.backend(model, kind, KvPrecision.F32));
        float[] logits = new GlobalSession(transformer, 80).feed(prompt);
        JsonNode expectedLogits = reference.get("last_position_logits");
        assertEquals(expectedLogits.size(), logits.length);
        double maxDiff = 0;
        for (int i = 0; i < logits.length; i++) {
            maxDiff = Math.max(maxDiff, Math.abs(logits[i] - expectedLogits.get(i).asDouble()));
        }
        assertTrue(maxDiff <= 1e-4, "max |logit diff| " + maxDiff);

        GenerationResult result = generator(model).generate(new GlobalSession(transformer, 80), prompt,
                SamplingParams.greedy(64), token -> { });
        assertArrayEquals(ints(reference.get("greedy_64_tokens")), result.tokens());
        assertEquals(reference.get("greedy_text").asText(),
                reference.get("prompt").asText() + result.text());
    }

    private static int[] ints(JsonNode array) {
        int[] values = new int[array.size()];
        for (int i = 0; i < values.length; i++) {
            values[i] = array.get(i).asInt();
        }
        return values;
    }
}
