package org.starflink.engine.backend;

import java.util.Locale;
import java.util.ServiceLoader;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.starflink.engine.EngineException;
import org.starflink.engine.backend.djl.DjlBackend;
import org.starflink.engine.model.Model;

/**
 * The backends a user can choose by name ({@code starflink.backend}, {@code --backend}): {@code cpu} (alias
 * {@code djl}), {@code gpu}, {@code auto} (the GPU when one is usable, else the CPU, said in a log line) and
 * {@code reference}.
 */
public enum BackendKind {
    /** PyTorch on the CPU through DJL: the default. */
    DJL,
    /** Plain Java, float64 accumulation: slow, the reference. */
    REFERENCE,
    /** Our CUDA kernels (gpu-kernels/, found through {@link BackendProvider}). */
    GPU,
    /** GPU when usable, else DJL. */
    AUTO;

    private static final Logger LOG = LoggerFactory.getLogger(BackendKind.class);

    /** A backend of this kind with BF16 KV caches (the default), on device 0 for the GPU. */
    public Backend create(Model model) {
        return create(model, KvPrecision.BF16, 0);
    }

    public Backend create(Model model, KvPrecision kvPrecision, int device) {
        return switch (resolve(device)) {
            case DJL -> new DjlBackend(model.config(), model.weights(), kvPrecision);
            case REFERENCE -> new ReferenceBackend(model.config(), model.weights(), kvPrecision);
            case GPU -> {
                BackendProvider gpu = gpuProvider();
                if (gpu == null) {
                    throw new EngineException("backend gpu: the GPU backend (starflink-gpu-kernels) is not on the "
                            + "classpath");
                }
                String problem = gpu.unusableReason(device);
                if (problem != null) {
                    throw new EngineException("backend gpu: " + problem);
                }
                yield gpu.create(model.config(), model.weights(), kvPrecision, device);
            }
            case AUTO -> throw new IllegalStateException("resolve() never returns AUTO");
        };
    }

    /** The concrete kind: this one, or for {@link #AUTO} the GPU when usable on {@code device}, else DJL. */
    public BackendKind resolve(int device) {
        if (this != AUTO) {
            return this;
        }
        BackendProvider gpu = gpuProvider();
        String problem = gpu == null ? "the GPU backend is not on the classpath" : gpu.unusableReason(device);
        if (problem == null) {
            LOG.info("backend auto: the GPU (CUDA device {})", device);
            return GPU;
        }
        LOG.info("backend auto: the CPU (djl), since no GPU is usable: {}", problem);
        return DJL;
    }

    private static BackendProvider gpuProvider() {
        for (BackendProvider provider : ServiceLoader.load(BackendProvider.class, BackendKind.class.getClassLoader())) {
            if (provider.kind() == GPU) {
                return provider;
            }
        }
        return null;
    }

    public static BackendKind parse(String name) {
        String key = name.trim().toLowerCase(Locale.ROOT);
        return switch (key) {
            case "cpu", "djl" -> DJL;
            case "gpu" -> GPU;
            case "auto" -> AUTO;
            case "reference" -> REFERENCE;
            default -> throw new EngineException("unknown backend '" + name + "' (choose cpu, gpu, auto or reference)");
        };
    }
}
