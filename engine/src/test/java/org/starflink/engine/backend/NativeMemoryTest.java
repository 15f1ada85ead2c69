package org.starflink.engine.backend;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.starflink.engine.backend.djl.DjlBackend;
import org.starflink.engine.forward.Transformer;
import org.starflink.engine.model.ModelConfig;
import org.starflink.engine.testing.Passes;
import org.starflink.engine.testing.RandomModels;

/**
 * Thousands of passes must not leave a handle behind or grow memory: every tensor dies with its arena, every KV
 * cache and query host is closed by its owner. Checked four ways after a warm-up that lets libtorch's allocator
 * reach its steady state: the backend's count of open handles (exactly back to where it was after every pass),
 * DJL's count of live native arrays, the process's resident set outside the Java heap, and the Java heap in use
 * after a collection.
 *
 * <p>It caught one: DJL puts the result of an op on the manager of its first operand, so ops on the residual
 * stream (kept native between layers) leaked into the backend's manager until each op attached its inputs to its
 * own scope (115,557 live native arrays after the warm-up, 231,057 after 1500 more passes).
 *
 * <p>The model is wide enough (dim 256, 48-row prefills, 6-row questions) that every op runs through libtorch;
 * one leaked [48, 256] activation per pass would be 1000 x 48 KiB = 47 MiB per window, over the 32 MiB bounds
 * below.
 */
class NativeMemoryTest {
    private static final long BOUND_KIB = 32 * 1024;
    private static final int WINDOW = 1000;

    @Test
    void noHandleOutlivesItsScopeOverThousandsOfPasses() throws IOException {
        ModelConfig config = RandomModels.config(256, 2, 4, 2, 300);
        try (DjlBackend backend = new DjlBackend(config, RandomModels.weights(config, 1), KvPrecision.BF16)) {
            Transformer transformer = new Transformer(backend);
            Random random = new Random(5);
            try (KvCache block = backend.newKvCache(64)) {
                transformer.forward(RandomModels.tokens(random, 64, 300), Transformer.range(0, 64), List.of(), block,
                        false);
                long handles = backend.liveHandles();
                Runnable pass = () -> {
                    Passes.prefillDecodeAndQueryHost(transformer, block, random, 300);
                    assertEquals(handles, backend.liveHandles(), "handles left open by one pass");
                };
                for (int i = 0; i < 700; i++) { // warm-up: the allocator and the JIT reach their steady state
                    pass.run();
                }
                int arraysBefore = backend.liveNativeArrays();
                long heapBefore = heapUsedKiB();
                long start = System.nanoTime();
                long first = lowestNonHeapResidentKiB(pass);
                long second = lowestNonHeapResidentKiB(pass);
                System.out.printf("NativeMemoryTest: %.2f ms per pass; lowest resident outside the heap %d KiB, "
                        + "then %d KiB%n", (System.nanoTime() - start) / (2 * WINDOW * 1e6), first, second);
                assertEquals(arraysBefore, backend.liveNativeArrays(), "native arrays left open by backend calls");
                long heapGrowth = heapUsedKiB() - heapBefore;
                assertTrue(second - first < BOUND_KIB, "resident memory outside the heap grew by "
                        + (second - first) + " KiB");
                assertTrue(heapGrowth < BOUND_KIB, "heap in use grew by " + heapGrowth + " KiB");
            }
            assertEquals(0, backend.liveHandles(), "handles open after every cache was closed");
        }
    }

    /**
     * Runs {@link #WINDOW} passes and returns the lowest resident set outside the heap seen every 250 passes. The
     * allocator's footprint swings by about 60 MiB between samples (seen: 437-497 MiB over 5,000 passes with no
     * trend); a leak lifts the floor of the swing, so windows are compared by their lowest sample.
     */
    private static long lowestNonHeapResidentKiB(Runnable pass) throws IOException {
        long lowest = Long.MAX_VALUE;
        for (int i = 1; i <= WINDOW; i++) {
            pass.run();
            if (i % 250 == 0) {
                lowest = Math.min(lowest, nonHeapResidentKiB());
            }
        }
        return lowest;
    }

    private static long heapUsedKiB() {
        System.gc();
        return ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed() / 1024;
    }

    /**
     * Resident set minus the Java heap. Exact because this test runs with a fixed, pre-touched heap (engine/pom.xml:
     * -Xms = -Xmx, AlwaysPreTouch), whose resident size is its committed size and does not change.
     */
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
