package org.starflink.engine.backend;

import org.starflink.engine.model.ModelConfig;
import org.starflink.engine.model.WeightSource;

/**
 * A backend that lives in another module (the CUDA backend in gpu-kernels/), found through
 * {@link java.util.ServiceLoader}: the engine names it ({@link BackendKind#GPU}) without depending on it.
 */
public interface BackendProvider {

    /** Which kind this provider makes. */
    BackendKind kind();

    /** Null when a backend can run on {@code device} in this process, else why not, in one line. */
    String unusableReason(int device);

    Backend create(ModelConfig config, WeightSource weights, KvPrecision kvPrecision, int device);
}
