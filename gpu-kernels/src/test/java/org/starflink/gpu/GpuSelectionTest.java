package org.starflink.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.starflink.engine.EngineException;
import org.starflink.engine.backend.BackendKind;
import org.starflink.engine.backend.KvPrecision;
import org.starflink.engine.model.ModelConfig;
import org.starflink.engine.testing.RandomModels;

/**
 * Backend selection where there is no GPU (this machine and CI): the provider is found through the service
 * loader, {@code auto} falls back to the CPU, {@code gpu} fails with one line naming what is missing. On a
 * machine with a GPU, bin/gpu-check runs {@link GpuCheck} instead.
 */
class GpuSelectionTest {

    @Test
    void withoutAUsableGpuAutoFallsBackAndGpuFailsClearly() {
        String reason = GpuBackend.unusableReason(0);
        if (reason == null) {
            return; // a machine with a GPU and the built library: GpuCheck covers it
        }
        assertEquals(BackendKind.DJL, BackendKind.AUTO.resolve(0));
        ModelConfig config = RandomModels.config(32, 1, 4, 2, 50);
        var model = new org.starflink.engine.model.Model("random", config, RandomModels.weights(config, 1), null);
        EngineException e = assertThrows(EngineException.class, () -> BackendKind.GPU.create(model,
                KvPrecision.BF16, 0));
        assertEquals("backend gpu: " + reason, e.getMessage());
        assertTrue(!e.getMessage().contains("\n"), "one line");
    }

    @Test
    void theGpuBackendRefusesFloat32Kv() {
        ModelConfig config = RandomModels.config(32, 1, 4, 2, 50);
        EngineException e = assertThrows(EngineException.class,
                () -> new GpuBackend(config, RandomModels.weights(config, 1), KvPrecision.F32, 0));
        assertEquals("the GPU backend stores KV in BF16 only (asked for F32)", e.getMessage());
    }

    @Test
    void allocationSizesRoundToClassesThatReuseWell() {
        assertEquals(256, GpuContext.sizeClass(1));
        assertEquals(1024, GpuContext.sizeClass(1000));
        assertEquals(1024, GpuContext.sizeClass(1024));
        assertEquals(64L << 20, GpuContext.sizeClass((64L << 20) - 5));
        assertEquals((64L << 20) + (2L << 20), GpuContext.sizeClass((64L << 20) + 1));
    }
}
