package org.starflink.benchmarks;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** One line describing the machine a benchmark ran on, printed above every table. */
final class Machine {
    private Machine() {
    }

    static String describe() {
        String cpu = "unknown CPU";
        try {
            cpu = Files.readAllLines(Path.of("/proc/cpuinfo")).stream()
                    .filter(l -> l.startsWith("model name")).findFirst()
                    .map(l -> l.substring(l.indexOf(':') + 1).trim()).orElse(cpu);
        } catch (IOException ignored) {
            // not Linux: keep "unknown CPU"
        }
        return String.format("%s, %d cores, Java %s, %s, OMP_NUM_THREADS=%s", cpu,
                Runtime.getRuntime().availableProcessors(), System.getProperty("java.version"),
                System.getProperty("os.name"), System.getenv().getOrDefault("OMP_NUM_THREADS", "unset"));
    }
}
