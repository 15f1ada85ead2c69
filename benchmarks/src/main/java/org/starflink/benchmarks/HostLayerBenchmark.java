package org.starflink.benchmarks;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.starflink.engine.backend.Arena;
import org.starflink.engine.backend.Backend;
import org.starflink.engine.backend.BackendKind;
import org.starflink.engine.backend.Tensor;
import org.starflink.engine.checkpoint.ModelRegistry;
import org.starflink.engine.model.Model;
import org.starflink.engine.model.ModelConfig;

/**
 * A query host's dense work per layer on the DJL backend: R questions' decode rows (one row each) through {@code
 * projectQkvEach}, {@code finishLayerEach} and {@code logitsEach}, stacked in one call as the host's batch runs
 * them, next to the same R rows one call each. Prints microseconds per call and per row, five rounds.
 *
 * <p>Usage: bin/benchmark host-layer [--model DIR (models/starflink-synth-14m)] [--rows 1,4,16]
 */
public final class HostLayerBenchmark {
    /** About this many multiply-adds of the projections and MLP per measured loop, whatever R. */
    private static final long WORK = 4_000_000_000L;

    public static void main(String[] args) {
        Model model = ModelRegistry.model(Path.of(BenchArgs.option(args, "--model", Path.of(
                System.getProperty("starflink.project.dir", "."), "models/starflink-synth-14m").toString())), null);
        List<Integer> rowCounts = BenchArgs.ints(BenchArgs.option(args, "--rows", "1,4,16"));
        ModelConfig c = model.config();
        System.out.println("# machine: " + Machine.describe() + ", load average " + EngineProfile.loadAverage());
        System.out.printf("# %s: dim %d, hidden %d, %d heads, %d KV heads, vocab %d; one decode row per question%n",
                Path.of(model.source()).getFileName(), c.dim(), c.hiddenDim(), c.heads(), c.kvHeads(), c.vocabSize());
        long perRow = (long) c.dim() * (c.queryWidth() + 2L * c.kvWidth()) + (long) c.queryWidth() * c.dim()
                + 3L * c.dim() * c.hiddenDim();
        Random random = new Random(1);
        double sink = 0;
        try (Backend backend = ModelRegistry.backend(model, BackendKind.DJL)) {
            System.out.println("| round | questions | calls | projectQkv us | finishLayer us | logits us "
                    + "| layer + head us per question |");
            System.out.println("|---:|---:|---|---:|---:|---:|---:|");
            for (int round = 1; round <= 5; round++) {
                for (int rows : rowCounts) {
                    long reps = Math.max(1, WORK / (perRow * rows));
                    for (boolean stacked : new boolean[] {true, false}) {
                        long[] nanos = new long[3];
                        for (long rep = 0; rep < reps; rep++) {
                            try (Arena arena = new Arena()) {
                                List<Tensor> xs = new ArrayList<>();
                                List<Tensor> attentions = new ArrayList<>();
                                List<int[]> positions = new ArrayList<>();
                                for (int r = 0; r < rows; r++) {
                                    xs.add(backend.upload(arena, vector(random, c.dim()), 1, c.dim()));
                                    attentions.add(backend.upload(arena, vector(random, c.queryWidth()), 1, c.heads(),
                                            c.headDim()));
                                    positions.add(new int[] {16000 + r});
                                }
                                sink += time(nanos, 0, stacked, rows,
                                        set -> backend.projectQkvEach(arena, 3, sets(xs, set), sets(positions, set)));
                                sink += time(nanos, 1, stacked, rows,
                                        set -> backend.finishLayerEach(arena, 3, sets(xs, set), sets(attentions, set)));
                                sink += time(nanos, 2, stacked, rows, set -> backend.logitsEach(sets(xs, set)));
                            }
                        }
                        double[] us = new double[3];
                        for (int op = 0; op < 3; op++) {
                            us[op] = nanos[op] / 1e3 / reps;
                        }
                        System.out.printf("| %d | %d | %s | %.1f | %.1f | %.1f | %.1f |%n", round, rows,
                                stacked ? "one stacked call" : "one call per question", us[0], us[1], us[2],
                                (c.layers() * (us[0] + us[1]) + us[2]) / rows);
                    }
                }
            }
        }
        System.out.println(sink == 42 ? "" : "# done");
    }

    /** The elements of {@code all}: every one ({@code set} < 0) or the one at {@code set}. */
    private static <T> List<T> sets(List<T> all, int set) {
        return set < 0 ? all : List.of(all.get(set));
    }

    /** Adds the op's time to nanos[op]: one call over every set, or one call per set. */
    private static double time(long[] nanos, int op, boolean stacked, int rows,
                               java.util.function.IntFunction<List<?>> call) {
        long start = System.nanoTime();
        int results = 0;
        if (stacked) {
            results += call.apply(-1).size();
        } else {
            for (int set = 0; set < rows; set++) {
                results += call.apply(set).size();
            }
        }
        nanos[op] += System.nanoTime() - start;
        return results;
    }

    private static float[] vector(Random random, int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) random.nextGaussian();
        }
        return v;
    }
}
