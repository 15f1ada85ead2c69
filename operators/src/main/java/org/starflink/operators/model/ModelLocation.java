package org.starflink.operators.model;

import java.io.Serializable;
import java.nio.file.Path;
import org.starflink.engine.backend.Backend;
import org.starflink.engine.backend.BackendKind;
import org.starflink.engine.checkpoint.ModelRegistry;
import org.starflink.engine.model.Model;

/**
 * Where the operators find the model: shipped with the job graph (paths, not weights); each TaskManager loads it
 * once through {@link ModelRegistry}, and every operator instance in that JVM shares it.
 *
 * @param model     Hugging Face folder or llama2.c file, as seen from the TaskManagers
 * @param tokenizer tokenizer override, or null
 * @param backendName backend name (djl, reference)
 */
public record ModelLocation(String model, String tokenizer, String backendName) implements Serializable {

    public Model load() {
        return ModelRegistry.model(Path.of(model), tokenizer == null ? null : Path.of(tokenizer));
    }

    public Backend backend() {
        return ModelRegistry.backend(load(), BackendKind.parse(backendName));
    }
}
