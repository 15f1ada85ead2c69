package org.starflink.engine.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.starflink.engine.checkpoint.SafetensorsTest.assertMessage;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.starflink.engine.EngineException;
import org.starflink.engine.model.LayerWeights;
import org.starflink.engine.model.Model;
import org.starflink.engine.model.ModelConfig;
import org.starflink.engine.model.ModelWeights;
import org.starflink.engine.model.RopeScaling;
import org.starflink.engine.model.RopeStyle;
import org.starflink.engine.model.WeightName;
import org.starflink.engine.model.WeightSource;
import org.starflink.engine.numeric.Bf16;
import org.starflink.engine.testing.FloatFormat;
import org.starflink.engine.testing.RandomHfCheckpoint;
import org.starflink.engine.tokenizer.HfTokenizer;

class HfCheckpointTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;

    @ParameterizedTest(name = "{0}, sharded={1}")
    @CsvSource({"BF16, true", "BF16, false", "F16, true", "F32, false"})
    void loadsTheWeightsThatWereWritten(FloatFormat format, boolean sharded) throws IOException {
        RandomHfCheckpoint written = RandomHfCheckpoint.builder().format(format).sharded(sharded).writeTo(dir);

        Model model = load();

        ModelConfig config = model.config();
        assertEquals("LlamaForCausalLM", config.architecture());
        assertEquals(32, config.dim());
        assertEquals(48, config.hiddenDim());
        assertEquals(2, config.layers());
        assertEquals(4, config.heads());
        assertEquals(2, config.kvHeads());
        assertEquals(8, config.headDim());
        assertEquals(RandomHfCheckpoint.TOKENIZER_SIZE + 6, config.vocabSize());
        assertEquals(256, config.maxPositions());
        assertEquals(10000.0, config.ropeTheta());
        assertEquals(RopeStyle.HALVES, config.ropeStyle());
        assertNull(config.ropeScaling());
        assertEquals(1e-5, config.rmsNormEps());
        assertFalse(config.qkvBias());
        assertFalse(config.tiedEmbeddings());
        assertEquals(RandomHfCheckpoint.BOS_ID, config.bosId());
        assertEquals(Set.of(RandomHfCheckpoint.EOS_ID), config.eosIds());
        assertWeightsEqual(written, model.weights(), config);
        assertEquals(RandomHfCheckpoint.TOKENIZER_SIZE, model.tokenizer().vocabSize());
        assertEquals(dir.toString(), model.source());
    }

    @Test
    void tiedEmbeddingsShareOneArray() throws IOException {
        RandomHfCheckpoint written = RandomHfCheckpoint.builder().tied(true).writeTo(dir);

        Model model = load();

        assertTrue(model.config().tiedEmbeddings());
        assertFalse(written.tensorNames().contains("lm_head.weight"));
        assertArrayEquals(model.weights().read(WeightName.of(WeightName.Kind.TOKEN_EMBEDDING)),
                model.weights().read(WeightName.of(WeightName.Kind.OUTPUT_HEAD)));
        assertWeightsEqual(written, model.weights(), model.config());
    }

    /** BF16 reads (what a GPU backend uploads) are the stored bits, or the float32 values rounded to nearest. */
    @ParameterizedTest
    @CsvSource({"BF16", "F32", "F16"})
    void readsTensorsAsBf16(FloatFormat format) throws IOException {
        RandomHfCheckpoint written = RandomHfCheckpoint.builder().format(format).writeTo(dir);
        Model model = load();
        float[] expected = written.tensor("model.layers.1.mlp.down_proj.weight");
        short[] bits = model.weights().readBf16(WeightName.of(WeightName.Kind.W_DOWN, 1));
        assertEquals(expected.length, bits.length);
        for (int i = 0; i < bits.length; i++) {
            assertEquals(Bf16.fromFloat(expected[i]), bits[i], "element " + i);
        }
    }

    @Test
    void loadsQwen2QkvBiases() throws IOException {
        RandomHfCheckpoint written = RandomHfCheckpoint.builder()
                .architecture("Qwen2ForCausalLM").qkvBias(true).tied(true).writeTo(dir);

        Model model = load();

        assertTrue(model.config().qkvBias());
        assertWeightsEqual(written, model.weights(), model.config());
    }

    @Test
    void parsesLlama3RopeScalingAndGroupedQueryShapes() throws IOException {
        RandomHfCheckpoint written = RandomHfCheckpoint.builder()
                .llama3Scaling(true).ropeTheta(500000).dim(64).heads(8).kvHeads(2).hidden(96).layers(3)
                .writeTo(dir);

        Model model = load();

        assertEquals(new RopeScaling(8.0, 1.0, 4.0, 64), model.config().ropeScaling());
        assertEquals(500000.0, model.config().ropeTheta());
        assertEquals(4, model.config().groupSize());
        assertWeightsEqual(written, model.weights(), model.config());
    }

    @Test
    void usesATokenizerOverride(@TempDir Path other) throws IOException {
        RandomHfCheckpoint.builder().writeTo(dir);
        RandomHfCheckpoint.builder().writeTo(other);
        Files.delete(dir.resolve("tokenizer.json"));

        Model model = HfCheckpoint.load(dir, other.resolve("tokenizer.json"));
        try (HfTokenizer tokenizer = (HfTokenizer) model.tokenizer()) {
            assertEquals("the sun", tokenizer.decode(tokenizer.encode("the sun")));
        }
    }

    @Test
    void checkpointLoaderRecognisesAHuggingFaceFolder() throws IOException {
        RandomHfCheckpoint written = RandomHfCheckpoint.builder().writeTo(dir);

        Model model = CheckpointLoader.load(dir, null);
        ((HfTokenizer) model.tokenizer()).close();

        assertArrayEquals(written.tensor("model.norm.weight"), model.weights().read(WeightName.of(WeightName.Kind.FINAL_NORM)));
    }

    @Test
    void reportsAMissingConfig() throws IOException {
        RandomHfCheckpoint.builder().writeTo(dir);
        Files.delete(dir.resolve("config.json"));

        assertMessage(loadFails(), dir.resolve("config.json") + " is missing");
    }

    @Test
    void reportsAMissingTokenizer() throws IOException {
        RandomHfCheckpoint.builder().writeTo(dir);
        Files.delete(dir.resolve("tokenizer.json"));

        assertMessage(loadFails(), dir.resolve("tokenizer.json") + " is missing");
    }

    @Test
    void reportsMissingWeights() throws IOException {
        RandomHfCheckpoint.builder().writeTo(dir);
        Files.delete(dir.resolve(ShardedSafetensors.INDEX_FILE));

        assertMessage(loadFails(), "no model.safetensors or model.safetensors.index.json");
    }

    @Test
    void reportsAnUnsupportedArchitecture() throws IOException {
        RandomHfCheckpoint.builder().architecture("GPTNeoXForCausalLM").writeTo(dir);

        assertMessage(loadFails(), "unsupported architecture GPTNeoXForCausalLM",
                "supported: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM");
    }

    @Test
    void reportsAnUnsupportedRopeScalingType() throws IOException {
        RandomHfCheckpoint.builder().writeTo(dir);
        editConfig(config -> config.putObject("rope_scaling").put("rope_type", "yarn").put("factor", 4.0));

        assertMessage(loadFails(), "unsupported rope scaling type yarn");
    }

    @Test
    void reportsAShapeThatDisagreesWithTheConfig() throws IOException {
        RandomHfCheckpoint.builder().kvHeads(2).writeTo(dir);
        editConfig(config -> config.put("num_key_value_heads", 4));

        assertMessage(loadFails(), "shape mismatch: model.layers.0.self_attn.k_proj.weight is [16, 32]"
                + " but config needs [32, 32]");
    }

    @Test
    void reportsAMissingOutputHead() throws IOException {
        RandomHfCheckpoint.builder().tied(true).writeTo(dir);
        editConfig(config -> config.put("tie_word_embeddings", false));

        assertMessage(loadFails(), "missing tensor lm_head.weight");
    }

    @Test
    void reportsATensorTheIndexDoesNotList() throws IOException {
        RandomHfCheckpoint.builder().writeTo(dir);
        Path index = dir.resolve(ShardedSafetensors.INDEX_FILE);
        ObjectNode json = (ObjectNode) JSON.readTree(index.toFile());
        ((ObjectNode) json.get("weight_map")).remove("model.layers.1.mlp.up_proj.weight");
        JSON.writeValue(index.toFile(), json);

        assertMessage(loadFails(), "missing tensor model.layers.1.mlp.up_proj.weight");
    }

    @Test
    void reportsAnIndexThatPointsAtTheWrongShard() throws IOException {
        RandomHfCheckpoint.builder().writeTo(dir);
        Path index = dir.resolve(ShardedSafetensors.INDEX_FILE);
        ObjectNode json = (ObjectNode) JSON.readTree(index.toFile());
        ((ObjectNode) json.get("weight_map")).put("model.norm.weight", RandomHfCheckpoint.FIRST_SHARD);
        JSON.writeValue(index.toFile(), json);

        assertMessage(loadFails(), "tensor model.norm.weight is mapped to " + RandomHfCheckpoint.FIRST_SHARD
                + ", which does not contain it");
    }

    @Test
    void reportsATruncatedShardByName() throws IOException {
        RandomHfCheckpoint.builder().writeTo(dir);
        Path shard = dir.resolve(RandomHfCheckpoint.SECOND_SHARD);
        try (RandomAccessFile raw = new RandomAccessFile(shard.toFile(), "rw")) {
            raw.setLength(raw.length() - 100);
        }

        assertMessage(loadFails(), shard.toString(), "truncated file");
    }

    @Test
    void reportsLayersBeyondTheConfig() throws IOException {
        RandomHfCheckpoint.builder().layers(3).writeTo(dir);
        editConfig(config -> config.put("num_hidden_layers", 2));

        assertMessage(loadFails(), "tensor model.layers.2.", "beyond config.json's num_hidden_layers 2");
    }

    @Test
    void reportsANonDirectory() {
        Path nowhere = dir.resolve("nowhere");
        EngineException e = assertThrows(EngineException.class, () -> HfCheckpoint.load(nowhere, null));
        assertMessage(e, nowhere + " is not a checkpoint directory");
    }

    private Model load() {
        Model model = HfCheckpoint.load(dir, null);
        ((HfTokenizer) model.tokenizer()).close();
        return model;
    }

    private EngineException loadFails() {
        return assertThrows(EngineException.class, () -> HfCheckpoint.load(dir, null));
    }

    private void editConfig(Consumer<ObjectNode> edit) throws IOException {
        Path file = dir.resolve("config.json");
        ObjectNode config = (ObjectNode) JSON.readTree(file.toFile());
        edit.accept(config);
        JSON.writeValue(file.toFile(), config);
    }

    private static void assertWeightsEqual(RandomHfCheckpoint written, WeightSource source, ModelConfig config) {
        ModelWeights weights = ModelWeights.read(source, config);
        assertArrayEquals(written.tensor("model.embed_tokens.weight"), weights.tokenEmbedding());
        assertArrayEquals(written.tensor("model.norm.weight"), weights.finalNorm());
        if (!config.tiedEmbeddings()) {
            assertArrayEquals(written.tensor("lm_head.weight"), weights.outputHead());
        }
        assertEquals(config.layers(), weights.layers().size());
        for (int i = 0; i < config.layers(); i++) {
            String prefix = "model.layers." + i + ".";
            LayerWeights layer = weights.layers().get(i);
            assertArrayEquals(written.tensor(prefix + "input_layernorm.weight"), layer.attentionNorm());
            assertArrayEquals(written.tensor(prefix + "self_attn.q_proj.weight"), layer.wq());
            assertArrayEquals(written.tensor(prefix + "self_attn.k_proj.weight"), layer.wk());
            assertArrayEquals(written.tensor(prefix + "self_attn.v_proj.weight"), layer.wv());
            assertArrayEquals(written.tensor(prefix + "self_attn.o_proj.weight"), layer.wo());
            assertArrayEquals(written.tensor(prefix + "post_attention_layernorm.weight"), layer.ffnNorm());
            assertArrayEquals(written.tensor(prefix + "mlp.gate_proj.weight"), layer.wGate());
            assertArrayEquals(written.tensor(prefix + "mlp.up_proj.weight"), layer.wUp());
            assertArrayEquals(written.tensor(prefix + "mlp.down_proj.weight"), layer.wDown());
            if (config.qkvBias()) {
                assertArrayEquals(written.tensor(prefix + "self_attn.q_proj.bias"), layer.bq());
                assertArrayEquals(written.tensor(prefix + "self_attn.k_proj.bias"), layer.bk());
                assertArrayEquals(written.tensor(prefix + "self_attn.v_proj.bias"), layer.bv());
            } else {
                assertNull(layer.bq());
                assertNull(layer.bk());
                assertNull(layer.bv());
            }
        }
    }
}
