package org.starflink.engine.checkpoint;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.starflink.engine.checkpoint.SafetensorsTest.assertMessage;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.starflink.engine.EngineException;
import org.starflink.engine.model.ModelConfig;
import org.starflink.engine.model.RopeScaling;

/** config.json parsing alone: written by hand, without weights or tokenizer. */
class HfConfigTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;

    /** The fields every supported config carries; each test adds or overrides what it is about. */
    private static ObjectNode minimal(String architecture) {
        ObjectNode config = JSON.createObjectNode();
        config.putArray("architectures").add(architecture);
        return config.put("hidden_size", 64)
                .put("intermediate_size", 128)
                .put("num_hidden_layers", 2)
                .put("num_attention_heads", 8)
                .put("vocab_size", 100)
                .put("max_position_embeddings", 4096)
                .put("bos_token_id", 1)
                .put("eos_token_id", 2);
    }

    @Test
    void appliesTransformersDefaults() throws IOException {
        ModelConfig config = read(minimal("LlamaForCausalLM"));

        assertEquals(8, config.kvHeads());
        assertEquals(8, config.headDim());
        assertEquals(10000.0, config.ropeTheta());
        assertEquals(1e-6, config.rmsNormEps());
        assertNull(config.ropeScaling());
        assertFalse(config.tiedEmbeddings());
    }

    @Test
    void readsAnExplicitHeadDimAndEosList() throws IOException {
        ObjectNode json = minimal("LlamaForCausalLM").put("head_dim", 16).put("num_key_value_heads", 2);
        json.putArray("eos_token_id").add(2).add(7).add(9);

        ModelConfig config = read(json);

        assertEquals(16, config.headDim());
        assertEquals(2, config.kvHeads());
        assertEquals(Set.of(2, 7, 9), config.eosIds());
    }

    @Test
    void acceptsTheLegacyTypeKeyForLlama3Scaling() throws IOException {
        ObjectNode json = minimal("LlamaForCausalLM");
        json.putObject("rope_scaling").put("type", "llama3").put("factor", 32.0).put("low_freq_factor", 1.0)
                .put("high_freq_factor", 4.0).put("original_max_position_embeddings", 8192);

        assertEquals(new RopeScaling(32.0, 1.0, 4.0, 8192), read(json).ropeScaling());
    }

    @Test
    void readsNestedRopeParameters() throws IOException {
        ObjectNode json = minimal("LlamaForCausalLM");
        json.putObject("rope_parameters").put("rope_type", "llama3").put("rope_theta", 500000.0)
                .put("factor", 8.0).put("low_freq_factor", 1.0).put("high_freq_factor", 4.0)
                .put("original_max_position_embeddings", 8192);

        ModelConfig config = read(json);

        assertEquals(500000.0, config.ropeTheta());
        assertEquals(new RopeScaling(8.0, 1.0, 4.0, 8192), config.ropeScaling());
    }

    @Test
    void treatsDefaultRopeTypeAsNoScaling() throws IOException {
        ObjectNode json = minimal("Qwen2ForCausalLM").put("rope_theta", 1000000.0);
        json.putObject("rope_scaling").put("rope_type", "default");

        ModelConfig config = read(json);

        assertNull(config.ropeScaling());
        assertEquals(1000000.0, config.ropeTheta());
    }

    @Test
    void refusesLinearScalingByItsLegacyKey() {
        ObjectNode json = minimal("LlamaForCausalLM");
        json.putObject("rope_scaling").put("type", "linear").put("factor", 2.0);

        assertMessage(fails(json), "unsupported rope scaling type linear (supported: llama3)");
    }

    @Test
    void acceptsMistralWithoutASlidingWindowOrWithOneAsLongAsTheContext() throws IOException {
        ModelConfig withoutWindow = read(minimal("MistralForCausalLM").putNull("sliding_window"));
        ModelConfig fullWindow = read(minimal("MistralForCausalLM").put("sliding_window", 4096));

        assertEquals("MistralForCausalLM", withoutWindow.architecture());
        assertEquals(4096, fullWindow.maxPositions());
    }

    @Test
    void refusesMistralWithAShortSlidingWindow() {
        assertMessage(fails(minimal("MistralForCausalLM").put("sliding_window", 1024)),
                "unsupported sliding_window 1024");
    }

    @Test
    void refusesQwen2WithSlidingWindowsOn() {
        assertMessage(fails(minimal("Qwen2ForCausalLM").put("use_sliding_window", true).put("sliding_window", 512)),
                "unsupported use_sliding_window: true");
    }

    @Test
    void qwen2HasQkvBiasesAndLlamaDoesNot() throws IOException {
        assertTrue(read(minimal("Qwen2ForCausalLM")).qkvBias());
        assertFalse(read(minimal("LlamaForCausalLM")).qkvBias());
    }

    @Test
    void refusesLlamaWithAttentionBias() {
        assertMessage(fails(minimal("LlamaForCausalLM").put("attention_bias", true)), "unsupported attention_bias");
    }

    @Test
    void refusesAnotherActivation() {
        assertMessage(fails(minimal("LlamaForCausalLM").put("hidden_act", "gelu")), "unsupported hidden_act gelu");
    }

    @Test
    void namesTheFileWhenTheModelConfigRejectsTheShape() {
        assertMessage(fails(minimal("LlamaForCausalLM").put("num_key_value_heads", 3)),
                "config.json: invalid model config: heads (8) must be a multiple of kv heads (3)");
    }

    @Test
    void reportsAMissingRequiredField() {
        ObjectNode json = minimal("LlamaForCausalLM");
        json.remove("intermediate_size");

        assertMessage(fails(json), "config.json: missing or non-positive intermediate_size");
    }

    @Test
    void takesTokenIdsFromTheGenerationConfigWhenConfigLacksThem() throws IOException {
        ObjectNode json = minimal("LlamaForCausalLM");
        json.remove("bos_token_id");
        json.remove("eos_token_id");
        ObjectNode generation = JSON.createObjectNode().put("bos_token_id", 5);
        generation.putArray("eos_token_id").add(6).add(7);
        JSON.writeValue(dir.resolve("generation_config.json").toFile(), generation);

        ModelConfig config = read(json);

        assertEquals(5, config.bosId());
        assertEquals(Set.of(6, 7), config.eosIds());
    }

    @Test
    void resolvesTokenNamesFromTheTokenizerConfigAsALastResort() throws IOException {
        ObjectNode json = minimal("LlamaForCausalLM");
        json.remove("bos_token_id");
        json.remove("eos_token_id");
        ObjectNode tokenizerConfig = JSON.createObjectNode().put("bos_token", "<|begin|>");
        tokenizerConfig.putObject("eos_token").put("content", "<|end|>");
        ObjectNode added = tokenizerConfig.putObject("added_tokens_decoder");
        added.putObject("97").put("content", "<|begin|>").put("special", true);
        added.putObject("98").put("content", "<|end|>").put("special", true);
        JSON.writeValue(dir.resolve("tokenizer_config.json").toFile(), tokenizerConfig);

        ModelConfig config = read(json);

        assertEquals(97, config.bosId());
        assertEquals(Set.of(98), config.eosIds());
    }

    @Test
    void reportsMissingTokenIds() {
        ObjectNode json = minimal("LlamaForCausalLM");
        json.remove("bos_token_id");

        assertMessage(fails(json), "no bos_token_id");
    }

    @Test
    void reportsATokenIdOutsideTheVocabulary() {
        assertMessage(fails(minimal("LlamaForCausalLM").put("eos_token_id", 100)),
                "eos_token_id 100 is outside the vocabulary [0, 100)");
    }

    @Test
    void reportsAConfigThatIsNotJson() throws IOException {
        Files.writeString(dir.resolve("config.json"), "{\"architectures\": [");

        EngineException e = assertThrows(EngineException.class, () -> HfConfig.read(dir));
        assertMessage(e, dir.resolve("config.json") + " is not JSON");
    }

    private ModelConfig read(ObjectNode json) throws IOException {
        JSON.writeValue(dir.resolve("config.json").toFile(), json);
        return HfConfig.read(dir);
    }

    private EngineException fails(ObjectNode json) {
        return assertThrows(EngineException.class, () -> read(json));
    }
}
