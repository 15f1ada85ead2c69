package org.starflink.operators.model;

import java.io.Serializable;
import java.nio.file.Path;
import java.util.Set;
import org.apache.flink.api.common.externalresource.ExternalResourceInfo;
import org.apache.flink.api.common.functions.RuntimeContext;
import org.starflink.engine.EngineException;
import org.starflink.engine.backend.Backend;
import org.starflink.engine.backend.BackendKind;
import org.starflink.engine.backend.KvPrecision;
import org.starflink.engine.checkpoint.ModelRegistry;
import org.starflink.engine.model.Model;

/**
 * Where the operators find the model: shipped with the job graph (paths, not weights); each TaskManager loads it
 * once through {@link ModelRegistry}, and every operator instance in that JVM shares it and its backend.
 *
 * @param model       Hugging Face folder or llama2.c file, as seen from the TaskManagers
 * @param tokenizer   tokenizer override, or null
 * @param backendName backend name (cpu, gpu, auto, reference)
 * @param gpuDevice   the CUDA device to use when Flink's GPU external resource names none; -1 for device 0 (the
 *                    first one CUDA_VISIBLE_DEVICES leaves visible)
 */
public record ModelLocation(String model, String tokenizer, String backendName, int gpuDevice)
        implements Serializable {
    /** Flink's external resource name for GPUs (external-resources: gpu; the GPU plugin sets "index"). */
    public static final String GPU_RESOURCE = "gpu";

    public ModelLocation(String model, String tokenizer, String backendName) {
        this(model, tokenizer, backendName, -1);
    }

    public Model load() {
        return ModelRegistry.model(Path.of(model), tokenizer == null ? null : Path.of(tokenizer));
    }

    /** The backend for an operator instance: on the GPU that Flink assigned to its TaskManager, if any. */
    public Backend backend(RuntimeContext context) {
        return backend(context.getExternalResourceInfos(GPU_RESOURCE));
    }

    /** The backend on the device named by {@code gpus} (Flink's GPU infos), else {@link #gpuDevice}, else 0. */
    public Backend backend(Set<ExternalResourceInfo> gpus) {
        return ModelRegistry.backend(load(), BackendKind.parse(backendName), KvPrecision.BF16, device(gpus));
    }

    int device(Set<ExternalResourceInfo> gpus) {
        for (ExternalResourceInfo gpu : gpus) {
            String index = gpu.getProperty("index").orElse(null);
            if (index != null) {
                try {
                    return Integer.parseInt(index.trim());
                } catch (NumberFormatException e) {
                    throw new EngineException("Flink's GPU resource has a non-numeric index '" + index + "'");
                }
            }
        }
        return Math.max(0, gpuDevice);
    }
}
