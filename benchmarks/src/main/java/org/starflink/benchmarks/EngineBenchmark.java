package org.starflink.benchmarks;

import java.util.List;
import java.util.Random;
import org.starflink.engine.backend.Backend;
import org.starflink.engine.backend.BackendKind;
import org.starflink.engine.forward.Transformer;
import org.starflink.engine.generate.GenerationResult;
import org.starflink.engine.generate.Generator;
import org.starflink.engine.generate.GlobalSession;
import org.starflink.engine.generate.SamplingParams;
import org.starflink.engine.model.Model;
import org.starflink.engine.model.RandomWeights;
import org.starflink.engine.model.ModelConfig;
import org.starflink.engine.model.RopeStyle;

/**
 * Prefill and decode tokens/s of the engine, per backend, side by side: stories260K (260K parameters, real) and
 * a synthetic Llama of about 100M parameters (random weights: speed does not depend on what they know).
 * Usage: bin/benchmark engine [--quick]
 */
public final class EngineBenchmark {
    private record Case(String model, Model loaded, BackendKind backend, int promptTokens, int decodeTokens) {
    }

    public static void main(String[] args) {
        boolean quick = List.of(args).contains("--quick");
        System.out.println("# Engine throughput (greedy, one sequence)");
        System.out.println("# machine: " + Machine.describe());
        Model stories = Stories260K.load();
        Model synthetic = synthetic100M();
        System.out.printf("# synthetic: %.0fM parameters (dim %d, %d layers, %d/%d heads, hidden %d, vocab %d)%n",
                synthetic.config().parameterCount() / 1e6, synthetic.config().dim(), synthetic.config().layers(),
                synthetic.config().heads(), synthetic.config().kvHeads(), synthetic.config().hiddenDim(),
                synthetic.config().vocabSize());
        List<Case> cases = List.of(
                new Case("stories260K", stories, BackendKind.REFERENCE, 256, 128),
                new Case("stories260K", stories, BackendKind.DJL, 256, 128),
                new Case("synthetic-100M", synthetic, BackendKind.REFERENCE, 32, 8),
                new Case("synthetic-100M", synthetic, BackendKind.DJL, 32, 8),
                new Case("synthetic-100M", synthetic, BackendKind.DJL, quick ? 256 : 1024, quick ? 16 : 64));
        System.out.printf("%-16s %-10s %8s %14s %8s %14s%n", "model", "backend", "prompt", "prefill tok/s",
                "decode", "decode tok/s");
        for (Case c : cases) {
            Backend backend = c.backend().create(c.loaded());
            run(c, backend, 1); // first-call costs (libtorch threads, JIT) stay out of the numbers
            GenerationResult result = run(c, backend, 0);
            System.out.printf("%-16s %-10s %8d %14.1f %8d %14.1f%n", c.model(), c.backend().name().toLowerCase(),
                    c.promptTokens(), result.timings().prefillTokensPerSecond(), result.tokens().length,
                    result.timings().decodeTokensPerSecond());
            backend.close();
        }
    }

    private static GenerationResult run(Case c, Backend backend, long seed) {
        Transformer transformer = new Transformer(backend);
        int[] prompt = RandomWeights.tokens(new Random(seed), c.promptTokens(), c.loaded().config().vocabSize());
        // No EOS: always decode the full count.
        Generator generator = new Generator(c.loaded().tokenizer(), java.util.Set.of());
        try (GlobalSession session = new GlobalSession(transformer, c.promptTokens() + c.decodeTokens())) {
            return generator.generate(session, prompt, SamplingParams.greedy(c.decodeTokens()), t -> { });
        }
    }

    /** Random weights have no text: this tokenizer renders ids as nothing (throughput does not need text). */
    private static final class IdsOnlyTokenizer implements org.starflink.engine.tokenizer.Tokenizer {
        @Override
        public int[] encode(String text) {
            throw new UnsupportedOperationException("synthetic model: no tokenizer");
        }

        @Override
        public String decode(int[] tokens) {
            return "";
        }

        @Override
        public int vocabSize() {
            return 16000;
        }
    }

    /** A Llama-shaped model of ~100M parameters with random weights. */
    static Model synthetic100M() {
        ModelConfig config = new ModelConfig("synthetic", 768, 2048, 12, 12, 4, 64, 16000, 8192, 500000.0,
                RopeStyle.HALVES, null, 1e-5, false, false, 1, java.util.Set.of(2));
        return new Model("synthetic-100M", config, RandomWeights.create(config, 1), new IdsOnlyTokenizer());
    }
}
