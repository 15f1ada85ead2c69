package org.starflink.engine.backend;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.starflink.engine.backend.djl.DjlBackend;
import org.starflink.engine.forward.KvCache;
import org.starflink.engine.forward.Transformer;
import org.starflink.engine.model.ModelConfig;
import org.starflink.engine.testing.RandomModels;

/**
 * Thousands of DJL calls must not grow native memory: every call closes its sub-manager. Checked twice: DJL's
 * own count of live arrays, and the process's resident set outside the Java heap (Linux /proc), after a warm-up
 * that lets libtorch's allocator reach its steady state.
 */
class NativeMemoryTest {

    @Test
    void residentMemoryStaysFlatOverThousandsOfCalls() throws IOException {
        ModelConfig config = RandomModels.config(64, 2, 4, 2, 100);
        try (DjlBackend backend = new DjlBackend(config, RandomModels.weights(config, 1))) {
            Transformer transformer = new Transformer(backend);
            Random random = new Random(5);
            Runnable pass = () -> {
                KvCache cache = new KvCache(config.layers(), config.kvWidth(), 64);
                transformer.forward(RandomModels.tokens(random, 48, 100), Transformer.range(0, 48), List.of(), cache,
                        true);
                transformer.forward(RandomModels.tokens(random, 1, 100), Transformer.range(48, 1), List.of(), cache,
                        true);
            };
            for (int i = 0; i < 1500; i++) { // warm-up: RSS rises ~100 MiB over ~1000 passes, then stays flat (seen)
                pass.run();
            }
            int arraysBefore = backend.liveNativeArrays();
            long nativeBefore = nonHeapResidentKiB();
            long start = System.nanoTime();
            for (int i = 0; i < 1500; i++) { // 1500 passes * 2 * (2 layers * 3 + 1) = 21,000 backend calls
                pass.run();
            }
            System.out.printf("NativeMemoryTest: %.1f us per backend call%n", (System.nanoTime() - start) / 21e6);
            assertEquals(arraysBefore, backend.liveNativeArrays(), "native arrays left open by backend calls");
            long growth = nonHeapResidentKiB() - nativeBefore;
            // Seen: +-12 MiB of allocator noise between windows. A leaked [48, 64] activation per call would be
            // 21,000 * 12 KiB = 246 MiB.
            assertTrue(growth < 32 * 1024, "resident memory outside the Java heap grew by " + growth + " KiB");
        }
    }

    /** Resident set minus the committed Java heap, which grows on its own as the JVM sees fit. */
    private static long nonHeapResidentKiB() throws IOException {
        System.gc();
        return residentKiB() - Runtime.getRuntime().totalMemory() / 1024;
    }

    private static long residentKiB() throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (line.startsWith("VmRSS:")) {
                return Long.parseLong(line.replaceAll("\\D", ""));
            }
        }
        throw new IllegalStateException("no VmRSS in /proc/self/status");
    }
}
