package org.starflink.engine.checkpoint;

import java.nio.file.Files;
import java.nio.file.Path;
import org.starflink.engine.EngineException;
import org.starflink.engine.model.Model;

/**
 * Loads a checkpoint of any supported kind: a Hugging Face folder (config.json + safetensors + tokenizer.json)
 * or a llama2.c .bin file (+ tokenizer.bin).
 */
public final class CheckpointLoader {
    private CheckpointLoader() {
    }

    /**
     * @param model     a Hugging Face folder or a llama2.c checkpoint file
     * @param tokenizer a tokenizer file overriding the one next to the model, or null
     */
    public static Model load(Path model, Path tokenizer) {
        if (!Files.exists(model)) {
            throw new EngineException("model not found: " + model);
        }
        if (tokenizer != null && !Files.isRegularFile(tokenizer)) {
            throw new EngineException("tokenizer not found: " + tokenizer);
        }
        if (Files.isDirectory(model)) {
            return HfCheckpoint.load(model, tokenizer);
        }
        if (model.getFileName().toString().endsWith(".bin")) {
            return Llama2cCheckpoint.load(model, tokenizer);
        }
        throw new EngineException("unrecognized model " + model
                + ": expected a Hugging Face folder (config.json, *.safetensors) or a llama2.c .bin checkpoint");
    }
}
