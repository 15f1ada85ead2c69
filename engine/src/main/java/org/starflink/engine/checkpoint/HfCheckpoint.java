package org.starflink.engine.checkpoint;

import java.nio.file.Path;
import org.starflink.engine.EngineException;
import org.starflink.engine.model.Model;

/** Placeholder until the Hugging Face loader lands (branch hf-checkpoints). */
final class HfCheckpoint {
    private HfCheckpoint() {
    }

    static Model load(Path dir, Path tokenizer) {
        throw new EngineException("Hugging Face checkpoints are not supported yet: " + dir);
    }
}
