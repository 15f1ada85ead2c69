package org.starflink.benchmarks;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.starflink.engine.backend.Backend;
import org.starflink.engine.backend.BackendKind;
import org.starflink.engine.forward.Transformer;
import org.starflink.engine.model.Model;
import org.starflink.engine.model.RandomWeights;
import org.starflink.engine.star.BlockLayout;
import org.starflink.engine.star.EncodedContext;
import org.starflink.engine.star.LongContextGenerator;

/**
 * Phase 1 of Star Attention (blocks of b = 1K, anchor = b, anchor encoded once) against a global prefill of the
 * same context, in the same engine and the same run, at growing context lengths. Global attention is quadratic
 * in the length; Star's phase 1 is linear (each block attends to at most 2b keys).
 *
 * <p>Usage: bin/benchmark star [--model stories260K|synthetic-100M|PATH] [--lengths 1024,2048,...] [--csv FILE]
 */
public final class StarVsGlobalBenchmark {
    public static void main(String[] args) throws IOException {
        String modelName = BenchArgs.option(args, "--model", "stories260K");
        List<Integer> lengths = new ArrayList<>();
        for (String n : BenchArgs.option(args, "--lengths", "1024,2048,4096,8192,16384").split(",")) {
            lengths.add(Integer.parseInt(n.trim()));
        }
        int blockSize = Integer.parseInt(BenchArgs.option(args, "--block-size", "1024"));
        String csv = BenchArgs.option(args, "--csv", null);

        Model model = switch (modelName) {
            case "synthetic-100M" -> EngineBenchmark.synthetic100M();
            case "stories260K" -> Stories260K.load();
            default -> org.starflink.engine.checkpoint.ModelRegistry.model(Path.of(modelName), null);
        };
        Backend backend = BackendKind.DJL.create(model);
        LongContextGenerator generator = new LongContextGenerator(model, new Transformer(backend));
        System.out.println("# Phase 1: Star (b = a = " + blockSize + ", anchor reused) vs global prefill, "
                + modelName + ", backend " + backend.name() + ", one process, blocks encoded one after another");
        System.out.println("# machine: " + Machine.describe());
        System.out.printf("%8s %7s %12s %12s %14s %10s%n", "tokens", "blocks", "global s", "star s",
                "star s/block", "global/star");
        generator.encode(RandomWeights.tokens(new Random(0), blockSize, model.config().vocabSize()),
                BlockLayout.of(blockSize)).close(); // warm-up
        List<String> rows = new ArrayList<>();
        rows.add("model,tokens,block_size,blocks,global_s,star_s,star_s_per_block");
        for (int length : lengths) {
            int[] context = RandomWeights.tokens(new Random(length), length, model.config().vocabSize());
            EncodedContext star = generator.encode(context, BlockLayout.of(blockSize));
            EncodedContext global = generator.encode(context, BlockLayout.global(length));
            double starSeconds = star.encodeNanos() / 1e9;
            double globalSeconds = global.encodeNanos() / 1e9;
            int blocks = star.blocks().size();
            System.out.printf("%8d %7d %12.2f %12.2f %14.3f %10.2f%n", length, blocks, globalSeconds, starSeconds,
                    starSeconds / blocks, globalSeconds / starSeconds);
            rows.add(String.format("%s,%d,%d,%d,%.4f,%.4f,%.4f", modelName, length, blockSize, blocks,
                    globalSeconds, starSeconds, starSeconds / blocks));
            star.close();
            global.close();
        }
        if (csv != null) {
            Files.write(Path.of(csv), rows);
            System.out.println("# wrote " + csv);
        }
        backend.close();
    }
}
