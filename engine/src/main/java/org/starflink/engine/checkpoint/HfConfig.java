package org.starflink.engine.checkpoint;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.starflink.engine.EngineException;
import org.starflink.engine.model.ModelConfig;
import org.starflink.engine.model.RopeScaling;
import org.starflink.engine.model.RopeStyle;

/**
 * Turns a Hugging Face checkpoint's config.json into a {@link ModelConfig}, refusing every setting the engine's
 * Llama-family forward pass would silently get wrong (sliding windows, other RoPE scalings, extra biases,
 * other activations).
 */
public final class HfConfig {
    public static final String CONFIG_FILE = "config.json";
    public static final String GENERATION_CONFIG_FILE = "generation_config.json";
    public static final String TOKENIZER_CONFIG_FILE = "tokenizer_config.json";

    public static final String LLAMA = "LlamaForCausalLM";
    public static final String MISTRAL = "MistralForCausalLM";
    public static final String QWEN2 = "Qwen2ForCausalLM";
    public static final List<String> SUPPORTED_ARCHITECTURES = List.of(LLAMA, MISTRAL, QWEN2);

    private final Path file;
    private final JsonNode json;

    private HfConfig(Path file, JsonNode json) {
        this.file = file;
        this.json = json;
    }

    /** Reads config.json of {@code dir}, and the token ids it lacks from the generation and tokenizer configs. */
    public static ModelConfig read(Path dir) {
        return new HfConfig(dir.resolve(CONFIG_FILE), Json.readObject(dir.resolve(CONFIG_FILE))).toModelConfig(dir);
    }

    private ModelConfig toModelConfig(Path dir) {
        String architecture = architecture();
        requireSilu();
        if (!architecture.equals(QWEN2)) {
            // Qwen2 always has q/k/v biases and no others; Llama and Mistral may not have any.
            refuseIfTrue("attention_bias");
        }
        refuseIfTrue("mlp_bias");
        int dim = requiredInt("hidden_size");
        int heads = requiredInt("num_attention_heads");
        int maxPositions = requiredInt("max_position_embeddings");
        refuseSlidingWindow(architecture, maxPositions);
        int vocabSize = requiredInt("vocab_size");
        int hiddenDim = requiredInt("intermediate_size");
        int layers = requiredInt("num_hidden_layers");
        int kvHeads = optionalInt(json, "num_key_value_heads", heads);
        int headDim = optionalInt(json, "head_dim", dim / heads);
        double ropeTheta = ropeTheta();
        RopeScaling ropeScaling = ropeScaling();
        double rmsNormEps = optionalDouble("rms_norm_eps", 1e-6);
        boolean tied = json.path("tie_word_embeddings").asBoolean(false);
        TokenIds ids = new TokenIds(dir, vocabSize);
        int bos = ids.bos();
        Set<Integer> eos = ids.eos();
        try {
            return new ModelConfig(architecture, dim, hiddenDim, layers, heads, kvHeads, headDim, vocabSize,
                    maxPositions, ropeTheta, RopeStyle.HALVES, ropeScaling, rmsNormEps, architecture.equals(QWEN2),
                    tied, bos, eos);
        } catch (EngineException e) {
            throw new EngineException(file + ": " + e.getMessage(), e);
        }
    }

    private String architecture() {
        JsonNode architectures = json.get("architectures");
        if (architectures == null || !architectures.isArray() || architectures.isEmpty()) {
            throw fail("no architectures (supported: " + String.join(", ", SUPPORTED_ARCHITECTURES) + ")");
        }
        String architecture = architectures.get(0).asText();
        if (!SUPPORTED_ARCHITECTURES.contains(architecture)) {
            throw fail("unsupported architecture " + architecture + " (supported: "
                    + String.join(", ", SUPPORTED_ARCHITECTURES) + ")");
        }
        return architecture;
    }

    private void requireSilu() {
        String activation = json.path("hidden_act").asText("silu");
        if (!activation.equals("silu")) {
            throw fail("unsupported hidden_act " + activation + " (supported: silu)");
        }
    }

    private void refuseIfTrue(String field) {
        if (json.path(field).asBoolean(false)) {
            throw fail("unsupported " + field + ": true");
        }
    }

    private void refuseSlidingWindow(String architecture, int maxPositions) {
        JsonNode window = json.get("sliding_window");
        if (architecture.equals(MISTRAL) && window != null && !window.isNull() && window.asInt() < maxPositions) {
            throw fail("unsupported sliding_window " + window.asInt() + " (smaller than max_position_embeddings "
                    + maxPositions + "; the engine attends to the whole context)");
        }
        if (architecture.equals(QWEN2) && json.path("use_sliding_window").asBoolean(false)) {
            throw fail("unsupported use_sliding_window: true (the engine attends to the whole context)");
        }
    }

    /** Newer transformers versions nest theta and scaling in rope_parameters; older ones use the top level. */
    private JsonNode ropeParameters() {
        JsonNode parameters = json.get("rope_parameters");
        return parameters != null && parameters.isObject() ? parameters : json.get("rope_scaling");
    }

    private double ropeTheta() {
        JsonNode parameters = ropeParameters();
        if (parameters != null && parameters.hasNonNull("rope_theta")) {
            return parameters.get("rope_theta").asDouble();
        }
        return optionalDouble("rope_theta", 10000.0);
    }

    private RopeScaling ropeScaling() {
        JsonNode scaling = ropeParameters();
        if (scaling == null || scaling.isNull()) {
            return null;
        }
        String type = scaling.hasNonNull("rope_type") ? scaling.get("rope_type").asText()
                : scaling.path("type").asText("default");
        return switch (type) {
            case "default" -> null;
            case "llama3" -> new RopeScaling(
                    requiredNumber(scaling, "rope_scaling.factor", "factor"),
                    requiredNumber(scaling, "rope_scaling.low_freq_factor", "low_freq_factor"),
                    requiredNumber(scaling, "rope_scaling.high_freq_factor", "high_freq_factor"),
                    (int) requiredNumber(scaling, "rope_scaling.original_max_position_embeddings",
                            "original_max_position_embeddings"));
            default -> throw fail("unsupported rope scaling type " + type + " (supported: llama3)");
        };
    }

    private int requiredInt(String field) {
        JsonNode node = json.get(field);
        if (node == null || !node.canConvertToExactIntegral() || node.asInt() <= 0) {
            throw fail("missing or non-positive " + field);
        }
        return node.asInt();
    }

    private double requiredNumber(JsonNode parent, String label, String field) {
        JsonNode node = parent.get(field);
        if (node == null || !node.isNumber()) {
            throw fail("missing or non-numeric " + label);
        }
        return node.asDouble();
    }

    private double optionalDouble(String field, double fallback) {
        JsonNode node = json.get(field);
        return node == null || node.isNull() ? fallback : node.asDouble();
    }

    private static int optionalInt(JsonNode parent, String field, int fallback) {
        JsonNode node = parent.get(field);
        return node == null || node.isNull() ? fallback : node.asInt();
    }

    private EngineException fail(String problem) {
        return new EngineException(file + ": " + problem);
    }

    /**
     * BOS and EOS ids, each from the first of config.json, generation_config.json and tokenizer_config.json
     * that names it. The tokenizer config names tokens by text, resolved through its added_tokens_decoder.
     */
    private final class TokenIds {
        private final Path dir;
        private final int vocabSize;

        TokenIds(Path dir, int vocabSize) {
            this.dir = dir;
            this.vocabSize = vocabSize;
        }

        int bos() {
            Set<Integer> ids = find("bos_token_id", "bos_token");
            if (ids.size() != 1) {
                throw fail("expected one bos_token_id, found " + ids);
            }
            return ids.iterator().next();
        }

        Set<Integer> eos() {
            return find("eos_token_id", "eos_token");
        }

        private Set<Integer> find(String idField, String tokenField) {
            Set<Integer> ids = idsIn(json, idField);
            Path generationConfig = dir.resolve(GENERATION_CONFIG_FILE);
            if (ids.isEmpty() && Files.isRegularFile(generationConfig)) {
                ids = idsIn(Json.readObject(generationConfig), idField);
            }
            Path tokenizerConfig = dir.resolve(TOKENIZER_CONFIG_FILE);
            if (ids.isEmpty() && Files.isRegularFile(tokenizerConfig)) {
                ids = idOfNamedToken(Json.readObject(tokenizerConfig), tokenField);
            }
            if (ids.isEmpty()) {
                throw fail("no " + idField + " here, in " + GENERATION_CONFIG_FILE + " or in "
                        + TOKENIZER_CONFIG_FILE);
            }
            for (int id : ids) {
                if (id < 0 || id >= vocabSize) {
                    throw fail(idField + " " + id + " is outside the vocabulary [0, " + vocabSize + ")");
                }
            }
            return ids;
        }

        /** An int or a list of ints; empty when absent or null. */
        private Set<Integer> idsIn(JsonNode config, String field) {
            JsonNode node = config.path(field);
            Set<Integer> ids = new LinkedHashSet<>();
            if (node.canConvertToExactIntegral()) {
                ids.add(node.asInt());
            }
            if (node.isArray()) {
                node.forEach(id -> ids.add(id.asInt()));
            }
            return ids;
        }

        /** Resolves "bos_token": "<s>" (or {"content": "<s>"}) through "added_tokens_decoder": {"1": {...}}. */
        private Set<Integer> idOfNamedToken(JsonNode tokenizerConfig, String field) {
            JsonNode token = tokenizerConfig.path(field);
            String content = token.isObject() ? token.path("content").asText(null) : token.asText(null);
            if (content == null || token.isNull()) {
                return Set.of();
            }
            for (Map.Entry<String, JsonNode> added : tokenizerConfig.path("added_tokens_decoder").properties()) {
                if (content.equals(added.getValue().path("content").asText(null))) {
                    return Set.of(Integer.parseInt(added.getKey()));
                }
            }
            return Set.of();
        }
    }
}
