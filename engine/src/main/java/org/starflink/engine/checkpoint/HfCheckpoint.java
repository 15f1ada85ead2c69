package org.starflink.engine.checkpoint;

import java.nio.file.Files;
import java.nio.file.Path;
import org.starflink.engine.EngineException;
import org.starflink.engine.model.Model;
import org.starflink.engine.model.ModelConfig;
import org.starflink.engine.model.ModelWeights;
import org.starflink.engine.tokenizer.HfTokenizer;

/**
 * Loads a Hugging Face checkpoint directory (config.json, safetensors weights, tokenizer.json) of a supported
 * Llama-family architecture into a {@link Model}. Cheap checks run first: the config, every safetensors header
 * and the tokenizer are validated before the weights are read.
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
        try (ShardedSafetensors tensors = ShardedSafetensors.open(dir)) {
            HfTokenizer tokenizer = HfTokenizer.load(tokenizerOverride != null ? tokenizerOverride : dir);
            try {
                if (tokenizer.vocabSize() > config.vocabSize()) {
                    throw new EngineException(dir + ": the tokenizer has " + tokenizer.vocabSize()
                            + " tokens but the model's vocab_size is " + config.vocabSize());
                }
                ModelWeights weights = HfWeights.read(tensors, config);
                return new Model(dir.toString(), config, weights, tokenizer);
            } catch (RuntimeException e) {
                tokenizer.close();
                throw e;
            }
        }
    }
}
