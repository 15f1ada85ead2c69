package org.starflink.engine.backend;

import java.util.Locale;
import org.starflink.engine.EngineException;
import org.starflink.engine.backend.djl.DjlBackend;
import org.starflink.engine.model.Model;

/** The backends a user can choose by name. */
public enum BackendKind {
    /** PyTorch on the CPU through DJL: the default. */
    DJL,
    /** Plain Java, float64 accumulation: slow, the reference. */
    REFERENCE;

    /** A backend of this kind with BF16 KV caches (the default). */
    public Backend create(Model model) {
        return create(model, KvPrecision.BF16);
    }

    public Backend create(Model model, KvPrecision kvPrecision) {
        return switch (this) {
            case DJL -> new DjlBackend(model.config(), model.weights(), kvPrecision);
            case REFERENCE -> new ReferenceBackend(model.config(), model.weights(), kvPrecision);
        };
    }

    public static BackendKind parse(String name) {
        try {
            return valueOf(name.trim().toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new EngineException("unknown backend '" + name + "' (choose djl or reference)");
        }
    }
}
