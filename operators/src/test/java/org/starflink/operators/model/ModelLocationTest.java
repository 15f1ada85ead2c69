package org.starflink.operators.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Collection;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import org.apache.flink.api.common.externalresource.ExternalResourceInfo;
import org.junit.jupiter.api.Test;
import org.starflink.engine.EngineException;
import org.starflink.engine.testing.SharedModels;

/**
 * How an operator picks its backend and device on a TaskManager: the GPU that Flink's GPU plugin assigned
 * (external resource "gpu", property "index"), else the configured device, else 0; {@code auto} without a
 * usable GPU runs on the CPU; {@code gpu} without one fails when the operator opens, with one line.
 */
class ModelLocationTest {
    private static final String MODEL = SharedModels.stories260KDir().resolve("stories260K.bin").toString();

    /** What Flink's GPUDriver hands an operator: one info per GPU with its index. */
    private record GpuInfo(Map<String, String> properties) implements ExternalResourceInfo {
        @Override
        public Optional<String> getProperty(String key) {
            return Optional.ofNullable(properties.get(key));
        }

        @Override
        public Collection<String> getKeys() {
            return properties.keySet();
        }
    }

    @Test
    void theDeviceComesFromFlinksGpuResourceThenTheConfiguration() {
        ModelLocation configured = new ModelLocation(MODEL, null, "gpu", 3);
        assertEquals(5, configured.device(Set.of(new GpuInfo(Map.of("index", "5")))));
        assertEquals(3, configured.device(Set.of())); // a MiniCluster hands out no GPU infos
        assertEquals(0, new ModelLocation(MODEL, null, "gpu").device(Set.of()));
        EngineException e = assertThrows(EngineException.class,
                () -> configured.device(Set.of(new GpuInfo(Map.of("index", "x")))));
        assertEquals("Flink's GPU resource has a non-numeric index 'x'", e.getMessage());
    }

    @Test
    void autoRunsOnTheCpuAndGpuFailsClearlyWithoutAGpu() {
        assertEquals("djl-pytorch-cpu", new ModelLocation(MODEL, null, "auto").backend(Set.of()).name());
        EngineException e = assertThrows(EngineException.class,
                () -> new ModelLocation(MODEL, null, "gpu").backend(Set.of()));
        assertTrue(e.getMessage().startsWith("backend gpu: "), e.getMessage());
        assertTrue(!e.getMessage().contains("\n"), "one line: " + e.getMessage());
    }
}
