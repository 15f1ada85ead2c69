package org.starflink.engine.checkpoint;

import java.nio.file.Files;
import java.nio.file.Path;
import org.starflink.engine.EngineException;
import org.starflink.engine.model.Model;
import org.starflink.engine.model.ModelConfig;
import org.starflink.engine.model.WeightSource;
import org.starflink.engine.tokenizer.HfTokenizer;

/**
 * Loads a Hugging Face checkpoint directory (config.json, safetensors weights, tokenizer.json) of a supported
 * Llama-family architecture into a {@link Model}: the config, every safetensors header (presence and shape of
 * every tensor) and the tokenizer are validated here; the weights are read later, by each backend, one tensor at
 * a time.
 */
public final class HfCheckpoint {
    private HfCheckpoint() {
    }

    /**
     * @param dir               the checkpoint directory
     * @param tokenizerOverride a tokenizer.json (or a directory holding one) to use instead of the checkpoint's,
     *                          or null
     */
    public static Model load(Path dir, Path tokenizerOverride) {
        if (!Files.isDirectory(dir)) {
            throw new EngineException(dir + " is not a checkpoint directory");
        }
        ModelConfig config = HfConfig.read(dir);
        // The files stay open (memory-mapped) for as long as the model lives: backends read them when created.
        ShardedSafetensors tensors = ShardedSafetensors.open(dir);
        try {
            HfWeights weights = HfWeights.open(tensors, config);
            HfTokenizer tokenizer = HfTokenizer.load(tokenizerOverride != null ? tokenizerOverride : dir);
            if (tokenizer.vocabSize() > config.vocabSize()) {
                tokenizer.close();
                throw new EngineException(dir + ": the tokenizer has " + tokenizer.vocabSize()
                        + " tokens but the model's vocab_size is " + config.vocabSize());
            }
            return new Model(dir.toString(), config, weights, tokenizer);
        } catch (RuntimeException e) {
            tensors.close();
            throw e;
        }
    }

    /**
     * The weights of a checkpoint directory without its tokenizer (for tools that take token ids), validated
     * against {@code config}; the files stay mapped for as long as the source is used.
     */
    public static WeightSource weights(Path dir, ModelConfig config) {
        ShardedSafetensors tensors = ShardedSafetensors.open(dir);
        try {
            return HfWeights.open(tensors, config);
        } catch (RuntimeException e) {
            tensors.close();
            throw e;
        }
    }
}
