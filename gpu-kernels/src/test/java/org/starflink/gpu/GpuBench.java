package org.starflink.gpu;

import java.util.Random;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.stream.IntStream;
import org.starflink.engine.backend.KvPrecision;
import org.starflink.engine.forward.Transformer;
import org.starflink.engine.generate.Sampler;
import org.starflink.engine.generate.Session;
import org.starflink.engine.model.Model;
import org.starflink.engine.model.ModelConfig;
import org.starflink.engine.model.RopeStyle;
import org.starflink.engine.model.WeightName;
import org.starflink.engine.model.WeightSource;
import org.starflink.engine.star.BlockLayout;
import org.starflink.engine.star.EncodedContext;
import org.starflink.engine.star.LongContextGenerator;

/**
 * Whole-model timings of the GPU backend on a Llama-3.1-8B-shaped model with random BF16 weights (speed does not
 * depend on what weights know), printed as tables: phase-1 prefill, global and Star (blocks of 8K, anchor reused,
 * anchor rows skipped), with the roofline of each; decode ms per token, global and phase 2 over several blocks.
 * bin/gpu-check runs it next to Hugging Face transformers on the same shapes (gpu-kernels/bench/hf_prefill.py).
 * Usage: GpuBench [max context, default 65536]
 */
public final class GpuBench {
    /** Linear layers of the 8B shape: 2 * (4096*(4096+2*1024+4096) + 3*4096*14336) FLOP per token (no head). */
    private static final double LINEAR_FLOP_PER_TOKEN = 2.0 * (4096.0 * (4096 + 2 * 1024 + 4096)
            + 3.0 * 4096 * 14336) * 32;
    /** Measured on this H200 (stack.md): bf16 GEMM ~790 TFLOP/s, causal attention ~620 TFLOP/s (cuDNN). */
    private static final double GEMM_FLOPS = 790e12;
    private static final double ATTENTION_FLOPS = 620e12;

    public static void main(String[] args) {
        int maxContext = args.length > 0 ? Integer.parseInt(args[0]) : 65536;
        ModelConfig config = new ModelConfig("Llama-3.1-8B-shaped", 4096, 14336, 32, 32, 8, 128, 128256, 131072,
                500000.0, RopeStyle.HALVES, null, 1e-5, false, false, 128000, Set.of(128001));
        long start = System.nanoTime();
        try (GpuBackend gpu = new GpuBackend(config, new RandomBf16Weights(config), KvPrecision.BF16, 0)) {
            System.out.printf("# GPU backend, %s (%.2fB parameters, random BF16 weights), uploaded in %.1f s%n",
                    config.architecture(), config.parameterCount() / 1e9, (System.nanoTime() - start) / 1e9);
            Transformer transformer = new Transformer(gpu);
            LongContextGenerator generator = new LongContextGenerator(new Model("random", config, null, null),
                    transformer);
            prefill(gpu, generator, maxContext);
            decode(gpu, transformer, generator);
        }
    }

    private static void prefill(GpuBackend gpu, LongContextGenerator generator, int maxContext) {
        int block = 8192;
        timePhase1(gpu, generator, tokens(block, 0), BlockLayout.global(block)); // warm-up: cuBLAS, the cache
        System.out.println("# phase-1 prefill (one forward over the context, no logits), tokens/s");
        System.out.printf("%8s %12s %12s %12s %12s %14s%n", "tokens", "global", "global roof", "star b=8K",
                "star roof", "star/global");
        for (int n = 8192; n <= maxContext; n *= 2) {
            int[] context = tokens(n, n);
            double global = n / timePhase1(gpu, generator, context, BlockLayout.global(n));
            double star = n / timePhase1(gpu, generator, context, BlockLayout.of(block));
            // The necessary work: every token's linear layers once; global attends causally over n; Star's block
            // 0 causally over itself, every later block fully over the anchor and causally over itself.
            double globalSeconds = n * LINEAR_FLOP_PER_TOKEN / GEMM_FLOPS + attentionFlops(n) / ATTENTION_FLOPS;
            int blocks = n / block;
            double starSeconds = n * LINEAR_FLOP_PER_TOKEN / GEMM_FLOPS
                    + (blocks * attentionFlops(block) + (blocks - 1) * 2 * attentionFlops(block)) / ATTENTION_FLOPS;
            System.out.printf("%8d %12.0f %12.0f %12.0f %12.0f %14.2f%n", n, global, n / globalSeconds, star,
                    n / starSeconds, star / global);
        }
    }

    /** Causal attention FLOPs of n tokens over all layers: 4 n^2 H hd / 2 (QK^T and PV, half the matrix). */
    private static double attentionFlops(int n) {
        return 2.0 * n * (double) n * 32 * 128 * 32;
    }

    private static double timePhase1(GpuBackend gpu, LongContextGenerator generator, int[] context,
                                     BlockLayout layout) {
        gpu.synchronize();
        long start = System.nanoTime();
        try (EncodedContext encoded = generator.encode(context, layout)) {
            gpu.synchronize();
            return (System.nanoTime() - start) / 1e9;
        }
    }

    private static void decode(GpuBackend gpu, Transformer transformer, LongContextGenerator generator) {
        System.out.println("# decode, one stream, ms per token (16 tokens after the question)");
        System.out.printf("%8s %-22s %10s%n", "context", "mode", "ms/token");
        for (int n : new int[] {4096, 16384, 65536}) {
            int[] context = tokens(n, 7 * n);
            System.out.printf("%8d %-22s %10.2f%n", n, "global", msPerToken(gpu, () -> {
                var session = new org.starflink.engine.generate.GlobalSession(transformer, n + 32);
                session.feed(context);
                return session;
            }));
            for (int blocks : new int[] {4, 16}) {
                if (n / blocks < 1024) {
                    continue;
                }
                EncodedContext encoded = generator.encode(context, BlockLayout.of(n / blocks));
                System.out.printf("%8d %-22s %10.2f%n", n, "phase 2, " + blocks + " blocks", msPerToken(gpu,
                        () -> generator.session(encoded, 32)));
                encoded.close();
            }
        }
    }

    private static double msPerToken(GpuBackend gpu, java.util.function.Supplier<Session> opened) {
        try (Session session = opened.get()) {
            float[] logits = session.feed(new int[] {11, 12, 13, 14});
            for (int i = 0; i < 2; i++) { // warm-up steps
                logits = session.feed(new int[] {Sampler.argmax(logits)});
            }
            gpu.synchronize();
            long start = System.nanoTime();
            int steps = 16;
            for (int i = 0; i < steps; i++) {
                logits = session.feed(new int[] {Sampler.argmax(logits)}); // logits come back: one sync per token
            }
            return (System.nanoTime() - start) / 1e6 / steps;
        }
    }

    private static int[] tokens(int n, long seed) {
        Random random = new Random(seed);
        int[] t = new int[n];
        for (int i = 0; i < n; i++) {
            t[i] = 3 + random.nextInt(128000 - 3);
        }
        return t;
    }

    /**
     * Random BF16 weights made on the fly, one tensor at a time, in parallel: matrices uniform in +-sqrt(3 / in)
     * (variance 1 / in, so activations keep their scale), norms 1.
     */
    static final class RandomBf16Weights implements WeightSource {
        private final ModelConfig config;

        RandomBf16Weights(ModelConfig config) {
            this.config = config;
        }

        @Override
        public float[] read(WeightName name) {
            throw new UnsupportedOperationException("BF16 only");
        }

        @Override
        public short[] readBf16(WeightName name) {
            int[] shape = name.shape(config);
            int n = shape.length == 1 ? shape[0] : shape[0] * shape[1];
            short[] bits = new short[n];
            if (shape.length == 1) {
                java.util.Arrays.fill(bits, org.starflink.engine.numeric.Bf16.fromFloat(1f));
                return bits;
            }
            float bound = (float) Math.sqrt(3.0 / shape[1]);
            int chunk = 1 << 20;
            long seed = name.hashCode() * 0x9E3779B97F4A7C15L;
            IntStream.range(0, (n + chunk - 1) / chunk).parallel().forEach(c -> {
                SplittableRandom random = new SplittableRandom(seed + c);
                for (int i = c * chunk; i < Math.min(n, (c + 1) * chunk); i++) {
                    bits[i] = org.starflink.engine.numeric.Bf16.fromFloat((float) (random.nextDouble() * 2 - 1)
                            * bound);
                }
            });
            return bits;
        }
    }

}
