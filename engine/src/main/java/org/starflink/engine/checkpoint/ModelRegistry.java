package org.starflink.engine.checkpoint;

import java.nio.file.Path;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ConcurrentHashMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.starflink.engine.backend.Backend;
import org.starflink.engine.backend.BackendKind;
import org.starflink.engine.backend.KvPrecision;
import org.starflink.engine.model.Model;

/**
 * Loads each model once per JVM and shares it, with one backend per kind, among every caller (all Flink
 * operators of a TaskManager, all requests of a batch). Backends live until the JVM ends: they hold the
 * weights in native memory, which is exactly what must not be reloaded per operator or per request.
 */
public final class ModelRegistry {
    private record ModelKey(Path model, Path tokenizer) {
    }

    private record BackendKey(Model model, BackendKind kind, KvPrecision kvPrecision, int device) {
    }

    private static final Logger LOG = LoggerFactory.getLogger(ModelRegistry.class);
    private static final Map<ModelKey, Model> MODELS = new ConcurrentHashMap<>();
    private static final Map<BackendKey, Backend> BACKENDS = new ConcurrentHashMap<>();

    private ModelRegistry() {
    }

    public static Model model(Path model, Path tokenizer) {
        ModelKey key = new ModelKey(model.toAbsolutePath().normalize(),
                tokenizer == null ? null : tokenizer.toAbsolutePath().normalize());
        return MODELS.computeIfAbsent(key, k -> CheckpointLoader.load(k.model(), k.tokenizer()));
    }

    /** The JVM's backend of {@code kind} for {@code model}, with BF16 KV caches (the default). */
    public static Backend backend(Model model, BackendKind kind) {
        return backend(model, kind, KvPrecision.BF16);
    }

    public static Backend backend(Model model, BackendKind kind, KvPrecision kvPrecision) {
        return backend(model, kind, kvPrecision, 0);
    }

    /**
     * The JVM's backend of {@code kind} ({@code AUTO} resolved once, here) for {@code model} on {@code device}
     * (the CUDA device index; ignored by the CPU backends). Creating it logs the choice once.
     */
    public static Backend backend(Model model, BackendKind kind, KvPrecision kvPrecision, int device) {
        Objects.requireNonNull(model);
        BackendKind concrete = kind.resolve(device);
        int key = concrete == BackendKind.GPU ? device : 0;
        return BACKENDS.computeIfAbsent(new BackendKey(model, concrete, kvPrecision, key), k -> {
            Backend backend = k.kind().create(k.model(), k.kvPrecision(), k.device());
            LOG.info("backend {} for {} ({} KV)", backend.name(), k.model().source(), k.kvPrecision());
            return backend;
        });
    }
}
