package org.starflink.pipeline.cli;

import java.nio.file.Path;
import org.starflink.engine.backend.Backend;
import org.starflink.engine.backend.BackendKind;
import org.starflink.engine.checkpoint.ModelRegistry;
import org.starflink.engine.model.Model;
import picocli.CommandLine.Option;

/** The options that choose a model and a backend, shared by every command that runs one. */
final class ModelOptions {
    @Option(names = "--model", paramLabel = "DIR|FILE",
            description = "Hugging Face folder or llama2.c .bin (default: ${DEFAULT-VALUE}).",
            defaultValue = "${sys:starflink.default.model:-models/starflink-synth-14m}")
    Path model;

    @Option(names = "--tokenizer", paramLabel = "FILE", description = "Tokenizer overriding the model's own.")
    Path tokenizer;

    @Option(names = "--backend", paramLabel = "NAME", defaultValue = "djl",
            description = "djl (PyTorch on CPU) or reference (plain Java, slow). Default: ${DEFAULT-VALUE}.")
    String backend;

    Model load() {
        return ModelRegistry.model(model, tokenizer);
    }

    Backend backend(Model loaded) {
        return ModelRegistry.backend(loaded, BackendKind.parse(backend));
    }
}
