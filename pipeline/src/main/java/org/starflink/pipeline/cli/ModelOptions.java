package org.starflink.pipeline.cli;

import java.nio.file.Path;
import org.starflink.engine.backend.Backend;
import org.starflink.engine.backend.BackendKind;
import org.starflink.engine.backend.KvPrecision;
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

    @Option(names = "--backend", paramLabel = "NAME", defaultValue = "cpu",
            description = "cpu (PyTorch through DJL), gpu (our CUDA kernels), auto (the GPU when usable, else the "
                    + "CPU) or reference (plain Java, slow). Default: ${DEFAULT-VALUE}.")
    String backend;

    @Option(names = "--gpu-device", paramLabel = "N", defaultValue = "0",
            description = "CUDA device for --backend gpu/auto (default: ${DEFAULT-VALUE}).")
    int gpuDevice;

    Model load() {
        return ModelRegistry.model(model, tokenizer);
    }

    Backend backend(Model loaded) {
        return ModelRegistry.backend(loaded, BackendKind.parse(backend), KvPrecision.BF16, gpuDevice);
    }
}
