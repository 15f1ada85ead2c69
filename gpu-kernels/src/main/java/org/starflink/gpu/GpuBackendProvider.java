package org.starflink.gpu;

import org.starflink.engine.backend.Backend;
import org.starflink.engine.backend.BackendKind;
import org.starflink.engine.backend.BackendProvider;
import org.starflink.engine.backend.KvPrecision;
import org.starflink.engine.model.ModelConfig;
import org.starflink.engine.model.WeightSource;

/** Makes {@link GpuBackend}s for {@link BackendKind#GPU} (registered in META-INF/services). */
public final class GpuBackendProvider implements BackendProvider {

    @Override
    public BackendKind kind() {
        return BackendKind.GPU;
    }

    @Override
    public String unusableReason(int device) {
        return GpuBackend.unusableReason(device);
    }

    @Override
    public Backend create(ModelConfig config, WeightSource weights, KvPrecision kvPrecision, int device) {
        return new GpuBackend(config, weights, kvPrecision, device);
    }
}
