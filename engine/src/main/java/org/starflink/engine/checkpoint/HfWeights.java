package org.starflink.engine.checkpoint;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.starflink.engine.EngineException;
import org.starflink.engine.model.ModelConfig;
import org.starflink.engine.model.WeightName;
import org.starflink.engine.model.WeightSource;

/**
 * A Llama-family checkpoint's tensors by their Hugging Face names, as a {@link WeightSource}. Opening checks
 * every tensor's presence and shape against the config (headers only, no data read); each read maps and converts
 * one tensor. Tensors the forward pass does not use (for example rotary inv_freq buffers) are ignored; layers
 * beyond the config's count are an error, since they mean the config and the weights disagree.
 */
final class HfWeights implements WeightSource {
    private static final Pattern LAYER_INDEX = Pattern.compile("^model\\.layers\\.(\\d+)\\.");

    private final ShardedSafetensors tensors;
    private final ModelConfig config;

    private HfWeights(ShardedSafetensors tensors, ModelConfig config) {
        this.tensors = tensors;
        this.config = config;
    }

    /** Validates every tensor the model needs; the source keeps {@code tensors} open. */
    static HfWeights open(ShardedSafetensors tensors, ModelConfig config) {
        HfWeights weights = new HfWeights(tensors, config);
        weights.checkLayerCount();
        for (WeightName name : names(config)) {
            weights.checkedName(name);
        }
        return weights;
    }

    /** Every tensor the model reads. */
    static List<WeightName> names(ModelConfig config) {
        List<WeightName> names = new ArrayList<>();
        names.add(WeightName.of(WeightName.Kind.TOKEN_EMBEDDING));
        for (int l = 0; l < config.layers(); l++) {
            for (WeightName.Kind kind : WeightName.Kind.values()) {
                boolean bias = kind == WeightName.Kind.BQ || kind == WeightName.Kind.BK || kind == WeightName.Kind.BV;
                if (isLayerKind(kind) && (!bias || config.qkvBias())) {
                    names.add(WeightName.of(kind, l));
                }
            }
        }
        names.add(WeightName.of(WeightName.Kind.FINAL_NORM));
        names.add(WeightName.of(WeightName.Kind.OUTPUT_HEAD));
        return names;
    }

    @Override
    public float[] read(WeightName name) {
        return tensors.read(checkedName(name));
    }

    @Override
    public short[] readBf16(WeightName name) {
        return tensors.readBf16(checkedName(name));
    }

    /** The checkpoint's name for {@code name}, after checking that it exists with the config's shape. */
    private String checkedName(WeightName name) {
        String hfName = hfName(name);
        if (!tensors.contains(hfName)) {
            throw new EngineException(tensors.dir() + ": missing tensor " + hfName);
        }
        Safetensors.TensorHeader header = tensors.header(hfName);
        long[] expected = Arrays.stream(name.shape(config)).asLongStream().toArray();
        if (!Arrays.equals(header.shape(), expected)) {
            throw new EngineException(tensors.dir() + ": shape mismatch: " + hfName + " is " + header.shapeText()
                    + " but config needs " + Arrays.toString(expected));
        }
        return hfName;
    }

    private String hfName(WeightName name) {
        String layer = "model.layers." + name.layer() + ".";
        String attention = layer + "self_attn.";
        return switch (name.kind()) {
            case TOKEN_EMBEDDING -> "model.embed_tokens.weight";
            // Tied checkpoints store no lm_head (or one equal to the embedding, which transformers ignores too).
            case OUTPUT_HEAD -> config.tiedEmbeddings() ? "model.embed_tokens.weight" : "lm_head.weight";
            case FINAL_NORM -> "model.norm.weight";
            case ATTENTION_NORM -> layer + "input_layernorm.weight";
            case WQ -> attention + "q_proj.weight";
            case WK -> attention + "k_proj.weight";
            case WV -> attention + "v_proj.weight";
            case BQ -> attention + "q_proj.bias";
            case BK -> attention + "k_proj.bias";
            case BV -> attention + "v_proj.bias";
            case WO -> attention + "o_proj.weight";
            case FFN_NORM -> layer + "post_attention_layernorm.weight";
            case W_GATE -> layer + "mlp.gate_proj.weight";
            case W_UP -> layer + "mlp.up_proj.weight";
            case W_DOWN -> layer + "mlp.down_proj.weight";
        };
    }

    private static boolean isLayerKind(WeightName.Kind kind) {
        return switch (kind) {
            case TOKEN_EMBEDDING, FINAL_NORM, OUTPUT_HEAD -> false;
            default -> true;
        };
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
