package org.starflink.engine.checkpoint;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.starflink.engine.EngineException;
import org.starflink.engine.model.LayerWeights;
import org.starflink.engine.model.ModelConfig;
import org.starflink.engine.model.ModelWeights;

/**
 * Reads a Llama-family checkpoint's tensors by their Hugging Face names into {@link ModelWeights}, checking each
 * tensor's shape against the config before reading it. Tensors the forward pass does not use (for example
 * rotary inv_freq buffers) are ignored; layers beyond the config's count are an error, since they mean the
 * config and the weights disagree.
 */
final class HfWeights {
    private static final Pattern LAYER_INDEX = Pattern.compile("^model\\.layers\\.(\\d+)\\.");

    private final ShardedSafetensors tensors;
    private final ModelConfig config;

    private HfWeights(ShardedSafetensors tensors, ModelConfig config) {
        this.tensors = tensors;
        this.config = config;
    }

    static ModelWeights read(ShardedSafetensors tensors, ModelConfig config) {
        return new HfWeights(tensors, config).read();
    }

    private ModelWeights read() {
        checkLayerCount();
        int dim = config.dim();
        float[] embedding = tensor("model.embed_tokens.weight", config.vocabSize(), dim);
        List<LayerWeights> layers = new ArrayList<>(config.layers());
        for (int i = 0; i < config.layers(); i++) {
            layers.add(layer("model.layers." + i + "."));
        }
        float[] finalNorm = tensor("model.norm.weight", dim);
        // Tied checkpoints store no lm_head (or one equal to the embedding, which transformers ignores too).
        float[] outputHead = config.tiedEmbeddings() ? embedding : tensor("lm_head.weight", config.vocabSize(), dim);
        return new ModelWeights(embedding, layers, finalNorm, outputHead);
    }

    private LayerWeights layer(String prefix) {
        int dim = config.dim();
        int q = config.queryWidth();
        int kv = config.kvWidth();
        int hidden = config.hiddenDim();
        String attention = prefix + "self_attn.";
        return new LayerWeights(
                tensor(prefix + "input_layernorm.weight", dim),
                tensor(attention + "q_proj.weight", q, dim),
                tensor(attention + "k_proj.weight", kv, dim),
                tensor(attention + "v_proj.weight", kv, dim),
                config.qkvBias() ? tensor(attention + "q_proj.bias", q) : null,
                config.qkvBias() ? tensor(attention + "k_proj.bias", kv) : null,
                config.qkvBias() ? tensor(attention + "v_proj.bias", kv) : null,
                tensor(attention + "o_proj.weight", dim, q),
                tensor(prefix + "post_attention_layernorm.weight", dim),
                tensor(prefix + "mlp.gate_proj.weight", hidden, dim),
                tensor(prefix + "mlp.up_proj.weight", hidden, dim),
                tensor(prefix + "mlp.down_proj.weight", dim, hidden));
    }

    private float[] tensor(String name, long... expectedShape) {
        if (!tensors.contains(name)) {
            throw new EngineException(tensors.dir() + ": missing tensor " + name);
        }
        Safetensors.TensorHeader header = tensors.header(name);
        if (!Arrays.equals(header.shape(), expectedShape)) {
            throw new EngineException(tensors.dir() + ": shape mismatch: " + name + " is " + header.shapeText()
                    + " but config needs " + Arrays.toString(expectedShape));
        }
        return tensors.read(name);
    }

    private void checkLayerCount() {
        for (String name : tensors.names()) {
            Matcher matcher = LAYER_INDEX.matcher(name);
            if (matcher.find() && Long.parseLong(matcher.group(1)) >= config.layers()) {
                throw new EngineException(tensors.dir() + ": tensor " + name
                        + " is beyond config.json's num_hidden_layers " + config.layers());
            }
        }
    }
}
