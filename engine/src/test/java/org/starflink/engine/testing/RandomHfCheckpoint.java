package org.starflink.engine.testing;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.Set;

/**
 * A small random Llama-family checkpoint in Hugging Face layout: config.json, generation_config.json, weights in
 * safetensors (BF16 by default, sharded in two files with an index), a byte-level BPE tokenizer.json and
 * tokenizer_config.json. {@link #tensor} gives the exact values written, after rounding to the stored format.
 */
public final class RandomHfCheckpoint {
    /** The tokenizer: 256 byte tokens (id = byte value), then {@link #MERGES}, then BOS and EOS. */
    public static final List<String> MERGES =
            List.of("Ġ t", "h e", "Ġt he", "i n", "Ġ a", "e r", "o n", "Ġ s");
    public static final String BOS = "<s>";
    public static final String EOS = "</s>";
    public static final int BOS_ID = 256 + MERGES.size();
    public static final int EOS_ID = BOS_ID + 1;
    public static final int TOKENIZER_SIZE = EOS_ID + 1;

    public static final String FIRST_SHARD = "model-00001-of-00002.safetensors";
    public static final String SECOND_SHARD = "model-00002-of-00002.safetensors";

    private static final ObjectMapper JSON = new ObjectMapper();

    private final Path dir;
    private final Map<String, float[]> tensors;

    private RandomHfCheckpoint(Path dir, Map<String, float[]> tensors) {
        this.dir = dir;
        this.tensors = tensors;
    }

    public static Builder builder() {
        return new Builder();
    }

    public Path dir() {
        return dir;
    }

    public Set<String> tensorNames() {
        return Collections.unmodifiableSet(tensors.keySet());
    }

    /** The values written for {@code name}, exactly as a correct reader widens them back to float32. */
    public float[] tensor(String name) {
        float[] values = tensors.get(name);
        if (values == null) {
            throw new IllegalArgumentException("no tensor " + name + " was written");
        }
        return values.clone();
    }

    public static final class Builder {
        private int layers = 2;
        private int dim = 32;
        private int heads = 4;
        private int kvHeads = 2;
        private int hidden = 48;
        private int vocab = TOKENIZER_SIZE + 6;
        private int maxPositions = 256;
        private double ropeTheta = 10000;
        private boolean llama3Scaling;
        private boolean tied;
        private boolean qkvBias;
        private String architecture = "LlamaForCausalLM";
        private long seed = 1;
        private FloatFormat format = FloatFormat.BF16;
        private boolean sharded = true;

        private Builder() {
        }

        public Builder layers(int layers) {
            this.layers = layers;
            return this;
        }

        public Builder dim(int dim) {
            this.dim = dim;
            return this;
        }

        public Builder heads(int heads) {
            this.heads = heads;
            return this;
        }

        public Builder kvHeads(int kvHeads) {
            this.kvHeads = kvHeads;
            return this;
        }

        public Builder hidden(int hidden) {
            this.hidden = hidden;
            return this;
        }

        /** The model's vocab_size; at least {@link #TOKENIZER_SIZE}. */
        public Builder vocab(int vocab) {
            this.vocab = vocab;
            return this;
        }

        public Builder maxPositions(int maxPositions) {
            this.maxPositions = maxPositions;
            return this;
        }

        public Builder ropeTheta(double ropeTheta) {
            this.ropeTheta = ropeTheta;
            return this;
        }

        /** Adds Llama 3.1 rope_scaling: factor 8, low 1, high 4, original max positions maxPositions / 4. */
        public Builder llama3Scaling(boolean llama3Scaling) {
            this.llama3Scaling = llama3Scaling;
            return this;
        }

        public Builder tied(boolean tied) {
            this.tied = tied;
            return this;
        }

        /** Writes q/k/v biases, as Qwen2 checkpoints have. */
        public Builder qkvBias(boolean qkvBias) {
            this.qkvBias = qkvBias;
            return this;
        }

        public Builder architecture(String architecture) {
            this.architecture = architecture;
            return this;
        }

        public Builder seed(long seed) {
            this.seed = seed;
            return this;
        }

        public Builder format(FloatFormat format) {
            this.format = format;
            return this;
        }

        /** Two shards with model.safetensors.index.json (default), or one model.safetensors. */
        public Builder sharded(boolean sharded) {
            this.sharded = sharded;
            return this;
        }

        public RandomHfCheckpoint writeTo(Path dir) throws IOException {
            if (vocab < TOKENIZER_SIZE) {
                throw new IllegalArgumentException("vocab must be at least " + TOKENIZER_SIZE);
            }
            Files.createDirectories(dir);
            Map<String, long[]> shapes = shapes();
            Map<String, float[]> values = randomValues(shapes);
            writeWeights(dir, shapes, values);
            JSON.writerWithDefaultPrettyPrinter().writeValue(dir.resolve("config.json").toFile(), config());
            ObjectNode generation = JSON.createObjectNode().put("bos_token_id", BOS_ID).put("eos_token_id", EOS_ID);
            JSON.writeValue(dir.resolve("generation_config.json").toFile(), generation);
            JSON.writerWithDefaultPrettyPrinter().writeValue(dir.resolve("tokenizer.json").toFile(), tokenizer());
            JSON.writerWithDefaultPrettyPrinter()
                    .writeValue(dir.resolve("tokenizer_config.json").toFile(), tokenizerConfig());
            return new RandomHfCheckpoint(dir, values);
        }

        /** Every tensor in Hugging Face naming, in the order transformers saves them. */
        private Map<String, long[]> shapes() {
            int headDim = dim / heads;
            int q = heads * headDim;
            int kv = kvHeads * headDim;
            Map<String, long[]> shapes = new LinkedHashMap<>();
            shapes.put("model.embed_tokens.weight", new long[] {vocab, dim});
            for (int i = 0; i < layers; i++) {
                String layer = "model.layers." + i + ".";
                shapes.put(layer + "input_layernorm.weight", new long[] {dim});
                shapes.put(layer + "self_attn.q_proj.weight", new long[] {q, dim});
                shapes.put(layer + "self_attn.k_proj.weight", new long[] {kv, dim});
                shapes.put(layer + "self_attn.v_proj.weight", new long[] {kv, dim});
                if (qkvBias) {
                    shapes.put(layer + "self_attn.q_proj.bias", new long[] {q});
                    shapes.put(layer + "self_attn.k_proj.bias", new long[] {kv});
                    shapes.put(layer + "self_attn.v_proj.bias", new long[] {kv});
                }
                shapes.put(layer + "self_attn.o_proj.weight", new long[] {dim, q});
                shapes.put(layer + "post_attention_layernorm.weight", new long[] {dim});
                shapes.put(layer + "mlp.gate_proj.weight", new long[] {hidden, dim});
                shapes.put(layer + "mlp.up_proj.weight", new long[] {hidden, dim});
                shapes.put(layer + "mlp.down_proj.weight", new long[] {dim, hidden});
            }
            shapes.put("model.norm.weight", new long[] {dim});
            if (!tied) {
                shapes.put("lm_head.weight", new long[] {vocab, dim});
            }
            return shapes;
        }

        /** Norm weights near 1, everything else near 0, rounded to the stored format. */
        private Map<String, float[]> randomValues(Map<String, long[]> shapes) {
            Random random = new Random(seed);
            Map<String, float[]> values = new LinkedHashMap<>();
            shapes.forEach((name, shape) -> {
                float[] tensor = new float[Math.toIntExact(shape.length == 1 ? shape[0] : shape[0] * shape[1])];
                float center = name.endsWith("norm.weight") ? 1f : 0f;
                for (int i = 0; i < tensor.length; i++) {
                    tensor[i] = format.round(center + (float) random.nextGaussian() * 0.1f);
                }
                values.put(name, tensor);
            });
            return values;
        }

        /** Sharded: layers in the first half (and the embedding) go to the first shard, the rest to the second. */
        private void writeWeights(Path dir, Map<String, long[]> shapes, Map<String, float[]> values)
                throws IOException {
            if (!sharded) {
                SafetensorsWriter single = new SafetensorsWriter();
                shapes.forEach((name, shape) -> single.add(name, format, shape, values.get(name)));
                single.write(dir.resolve("model.safetensors"));
                return;
            }
            SafetensorsWriter first = new SafetensorsWriter();
            SafetensorsWriter second = new SafetensorsWriter();
            ObjectNode index = JSON.createObjectNode();
            long totalBytes = 0;
            ObjectNode weightMap = JSON.createObjectNode();
            List<String> names = new ArrayList<>(shapes.keySet());
            for (int i = 0; i < names.size(); i++) {
                String name = names.get(i);
                boolean inFirst = i < names.size() / 2;
                (inFirst ? first : second).add(name, format, shapes.get(name), values.get(name));
                weightMap.put(name, inFirst ? FIRST_SHARD : SECOND_SHARD);
                totalBytes += (long) values.get(name).length * format.bytes;
            }
            index.putObject("metadata").put("total_size", totalBytes);
            index.set("weight_map", weightMap);
            first.write(dir.resolve(FIRST_SHARD));
            second.write(dir.resolve(SECOND_SHARD));
            JSON.writerWithDefaultPrettyPrinter()
                    .writeValue(dir.resolve("model.safetensors.index.json").toFile(), index);
        }

        private ObjectNode config() {
            ObjectNode config = JSON.createObjectNode();
            config.putArray("architectures").add(architecture);
            // transformers' AutoConfig keys on model_type: "llama" for LlamaForCausalLM, "qwen2" for Qwen2...
            config.put("model_type", architecture.replace("ForCausalLM", "").toLowerCase(Locale.ROOT));
            config.put("hidden_size", dim)
                    .put("intermediate_size", hidden)
                    .put("num_hidden_layers", layers)
                    .put("num_attention_heads", heads)
                    .put("num_key_value_heads", kvHeads)
                    .put("vocab_size", vocab)
                    .put("max_position_embeddings", maxPositions)
                    .put("rope_theta", ropeTheta)
                    .put("rms_norm_eps", 1e-5)
                    .put("hidden_act", "silu")
                    .put("tie_word_embeddings", tied)
                    .put("bos_token_id", BOS_ID)
                    .put("eos_token_id", EOS_ID)
                    .put("torch_dtype", format == FloatFormat.F32 ? "float32"
                            : format == FloatFormat.F16 ? "float16" : "bfloat16");
            if (llama3Scaling) {
                config.putObject("rope_scaling")
                        .put("rope_type", "llama3")
                        .put("factor", 8.0)
                        .put("low_freq_factor", 1.0)
                        .put("high_freq_factor", 4.0)
                        .put("original_max_position_embeddings", maxPositions / 4);
            } else {
                config.putNull("rope_scaling");
            }
            return config;
        }

        /** A byte-level BPE like GPT-2's and Llama 3's; its post-processor would prepend BOS if asked to. */
        private ObjectNode tokenizer() {
            ObjectNode tokenizer = JSON.createObjectNode().put("version", "1.0");
            tokenizer.putNull("truncation");
            tokenizer.putNull("padding");
            ArrayNode added = tokenizer.putArray("added_tokens");
            addedToken(added.addObject(), BOS_ID, BOS);
            addedToken(added.addObject(), EOS_ID, EOS);
            tokenizer.putNull("normalizer");
            byteLevel(tokenizer.putObject("pre_tokenizer"));
            ObjectNode post = tokenizer.putObject("post_processor").put("type", "TemplateProcessing");
            post.putArray("single").add(bosPiece(0)).add(sequencePiece("A", 0));
            post.putArray("pair").add(bosPiece(0)).add(sequencePiece("A", 0)).add(bosPiece(1))
                    .add(sequencePiece("B", 1));
            ObjectNode special = post.putObject("special_tokens").putObject(BOS).put("id", BOS);
            special.putArray("ids").add(BOS_ID);
            special.putArray("tokens").add(BOS);
            byteLevel(tokenizer.putObject("decoder"));
            ObjectNode model = tokenizer.putObject("model").put("type", "BPE");
            model.putNull("dropout");
            model.putNull("unk_token");
            model.put("fuse_unk", false).put("byte_fallback", false);
            ObjectNode vocabulary = model.putObject("vocab");
            String[] byteChars = byteLevelAlphabet();
            for (int b = 0; b < 256; b++) {
                vocabulary.put(byteChars[b], b);
            }
            ArrayNode merges = model.putArray("merges");
            for (int i = 0; i < MERGES.size(); i++) {
                vocabulary.put(MERGES.get(i).replace(" ", ""), 256 + i);
                merges.add(MERGES.get(i));
            }
            return tokenizer;
        }

        private ObjectNode tokenizerConfig() {
            ObjectNode config = JSON.createObjectNode()
                    .put("bos_token", BOS)
                    .put("eos_token", EOS)
                    .put("model_max_length", maxPositions)
                    .put("clean_up_tokenization_spaces", false)
                    .put("tokenizer_class", "PreTrainedTokenizerFast");
            ObjectNode decoder = config.putObject("added_tokens_decoder");
            addedToken(decoder.putObject(Integer.toString(BOS_ID)), BOS_ID, BOS).remove("id");
            addedToken(decoder.putObject(Integer.toString(EOS_ID)), EOS_ID, EOS).remove("id");
            return config;
        }
    }

    private static ObjectNode addedToken(ObjectNode token, int id, String content) {
        return token.put("id", id).put("content", content).put("single_word", false).put("lstrip", false)
                .put("rstrip", false).put("normalized", false).put("special", true);
    }

    private static ObjectNode bosPiece(int typeId) {
        ObjectNode piece = JSON.createObjectNode();
        piece.putObject("SpecialToken").put("id", BOS).put("type_id", typeId);
        return piece;
    }

    private static ObjectNode sequencePiece(String sequence, int typeId) {
        ObjectNode piece = JSON.createObjectNode();
        piece.putObject("Sequence").put("id", sequence).put("type_id", typeId);
        return piece;
    }

    private static void byteLevel(ObjectNode node) {
        node.put("type", "ByteLevel").put("add_prefix_space", false).put("trim_offsets", true).put("use_regex", true);
    }

    /**
     * GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves, the other 68 bytes map in order to
     * U+0100 and up (so the space byte is 'Ġ', U+0120).
     */
    private static String[] byteLevelAlphabet() {
        String[] chars = new String[256];
        int next = 256;
        for (int b = 0; b < 256; b++) {
            boolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            chars[b] = String.valueOf((char) (printable ? b : next++));
        }
        return chars;
    }
}
