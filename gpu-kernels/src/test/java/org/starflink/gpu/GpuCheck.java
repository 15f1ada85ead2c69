package org.starflink.gpu;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.starflink.engine.attention.AttentionPartial;
import org.starflink.engine.backend.Arena;
import org.starflink.engine.backend.Backend;
import org.starflink.engine.backend.KvCache;
import org.starflink.engine.backend.KvPrecision;
import org.starflink.engine.backend.Partial;
import org.starflink.engine.backend.Qkv;
import org.starflink.engine.backend.ReferenceBackend;
import org.starflink.engine.backend.Tensor;
import org.starflink.engine.checkpoint.HfCheckpoint;
import org.starflink.engine.checkpoint.HfConfig;
import org.starflink.engine.forward.Transformer;
import org.starflink.engine.generate.Sampler;
import org.starflink.engine.model.Model;
import org.starflink.engine.model.ModelConfig;
import org.starflink.engine.model.ModelWeights;
import org.starflink.engine.model.RopeStyle;
import org.starflink.engine.model.WeightSource;
import org.starflink.engine.numeric.Bf16;
import org.starflink.engine.star.BlockLayout;
import org.starflink.engine.star.LongContextGenerator;
import org.starflink.engine.testing.FloatFormat;
import org.starflink.engine.testing.KvTesting;
import org.starflink.engine.testing.Passes;
import org.starflink.engine.testing.RandomHfCheckpoint;
import org.starflink.engine.testing.RandomModels;

/**
 * The GPU backend's checks, run on a machine with an NVIDIA GPU by bin/gpu-check (never in CI): every op through
 * the {@link Backend} interface against the float64 reference backend on fresh random inputs; thousands of passes
 * with handles and device memory flat; the project's model against Hugging Face transformers and the CPU engine;
 * random HF checkpoints against the reference; greedy answers of `starflink eval` instances in global and Star
 * mode against the CPU engine's (exported by {@link GpuReferenceExport}). Prints one PASS/FAIL line per check and
 * exits 1 if any failed. Usage: GpuCheck CPU_REFERENCE.json
 */
public final class GpuCheck {
    /** BF16 weights, activations into GEMMs and attention, BF16 KV: relative error of order 2^-8. */
    private static final double BF16_RELATIVE = 2e-2;
    private static int failures;

    public static void main(String[] args) throws Exception {
        String problem = GpuBackend.unusableReason(0);
        if (problem != null) {
            System.out.println("FAIL gpu: " + problem);
            System.exit(1);
        }
        section("ops", GpuCheck::opsAgainstTheReference);
        section("resources", GpuCheck::resourcesStayFlat);
        Path own = Path.of("models/starflink-synth-14m");
        ModelConfig config = HfConfig.read(own);
        WeightSource weights = HfCheckpoint.weights(own, config);
        Path cpuReference = args.length > 0 ? Path.of(args[0]) : null;
        try (GpuBackend gpu = new GpuBackend(config, weights, KvPrecision.BF16, 0)) {
            section("own model logits", () -> ownModelLogits(gpu, own, cpuReference));
            if (cpuReference != null) {
                section("eval answers", () -> greedyEvalAnswers(gpu, config, cpuReference));
            }
        }
        section("random HF checkpoints", GpuCheck::randomHfCheckpoints);
        System.out.println(failures == 0 ? "GpuCheck: all checks passed" : "GpuCheck: " + failures + " FAILED");
        System.exit(failures == 0 ? 0 : 1);
    }

    private interface Section {
        void run() throws Exception;
    }

    /** Runs one group of checks; an exception fails it with its message, and the next group still runs. */
    private static void section(String name, Section section) {
        try {
            section.run();
        } catch (Exception | AssertionError e) {
            failures++;
            System.out.println("FAIL " + name + ": " + e);
            e.printStackTrace(System.out);
        }
    }

    private static void report(String name, double value, double tolerance, String detail) {
        boolean pass = value <= tolerance && !Double.isNaN(value);
        failures += pass ? 0 : 1;
        System.out.printf("%s %-58s %.3e (tolerance %.0e)%s%n", pass ? "PASS" : "FAIL", name, value, tolerance,
                detail.isEmpty() ? "" : "  " + detail);
    }

    private static void check(String name, boolean pass, String detail) {
        failures += pass ? 0 : 1;
        System.out.printf("%s %-58s %s%n", pass ? "PASS" : "FAIL", name, detail);
    }

    /** ||a - b|| / ||b||, with infinities required at the same places (lse of rows that see nothing). */
    static double relative(float[] actual, float[] expected) {
        if (actual.length != expected.length) {
            return Double.POSITIVE_INFINITY;
        }
        double diff = 0;
        double norm = 0;
        for (int i = 0; i < actual.length; i++) {
            if (Float.isInfinite(expected[i]) || Float.isInfinite(actual[i])) {
                if (actual[i] != expected[i]) {
                    return Double.POSITIVE_INFINITY;
                }
                continue;
            }
            if (Float.isNaN(actual[i])) {
                return Double.NaN;
            }
            diff += (actual[i] - expected[i]) * (double) (actual[i] - expected[i]);
            norm += expected[i] * (double) expected[i];
        }
        return norm == 0 ? Math.sqrt(diff) : Math.sqrt(diff / norm);
    }

    // ------------------------------------------------------------------ per-op checks

    private static void opsAgainstTheReference() {
        List<Object[]> configs = List.of(
                new Object[] {"hd64 GQA 8/2", RandomModels.config(512, 2, 8, 2, 300)},
                new Object[] {"hd128 GQA 8/4", RandomModels.config(1024, 2, 8, 4, 300)},
                new Object[] {"hd64 llama3+bias 8/2", RandomModels.configWithExtras(512, 2, 8, 2, 300)},
                new Object[] {"hd8 MHA (simple kernel)", RandomModels.config(32, 2, 4, 4, 50)},
                new Object[] {"hd64 interleaved rope", interleaved(RandomModels.config(512, 2, 8, 2, 300))});
        for (Object[] c : configs) {
            opsOf((String) c[0], (ModelConfig) c[1]);
        }
    }

    private static ModelConfig interleaved(ModelConfig c) {
        return new ModelConfig(c.architecture(), c.dim(), c.hiddenDim(), c.layers(), c.heads(), c.kvHeads(),
                c.headDim(), c.vocabSize(), c.maxPositions(), c.ropeTheta(), RopeStyle.INTERLEAVED, c.ropeScaling(),
                c.rmsNormEps(), c.qkvBias(), c.tiedEmbeddings(), c.bosId(), c.eosIds());
    }

    private static void opsOf(String name, ModelConfig config) {
        Random random = new Random(System.nanoTime()); // fresh inputs every run
        ModelWeights weights = RandomModels.weights(config, random.nextLong());
        Backend reference = new ReferenceBackend(config, weights, KvPrecision.BF16);
        int hd = config.headDim();
        try (GpuBackend gpu = new GpuBackend(config, weights, KvPrecision.BF16, 0);
             Arena a = new Arena(); Arena b = new Arena()) {
            int rows = 37; // ragged against any tile
            int[] tokens = RandomModels.tokens(random, rows, config.vocabSize());
            int[] positions = new int[rows];
            int[] keyPositions = new int[rows];
            for (int i = 0; i < rows; i++) {
                positions[i] = 8192 + 3 * i; // non-contiguous positions past 8K
                keyPositions[i] = 8187 + 3 * i + (i % 3);
            }
            Tensor xRef = reference.embed(a, tokens);
            Tensor xGpu = gpu.embed(b, tokens);
            // the GPU keeps the table in BF16: its rows are the reference's rounded, exactly
            float[] rounded = reference.download(xRef);
            for (int i = 0; i < rounded.length; i++) {
                rounded[i] = Bf16.toFloat(Bf16.fromFloat(rounded[i]));
            }
            report(name + ": embed (= the BF16-rounded table)", relative(gpu.download(xGpu), rounded), 0, "");
            Qkv qkvRef = reference.projectQkv(a, 0, xRef, positions);
            Qkv qkvGpu = gpu.projectQkv(b, 0, xGpu, positions);
            report(name + ": q (rmsnorm, gemm, rope)", relative(gpu.download(qkvGpu.q()),
                    reference.download(qkvRef.q())), BF16_RELATIVE, "");
            report(name + ": k", relative(gpu.download(qkvGpu.k()), reference.download(qkvRef.k())), BF16_RELATIVE,
                    "");
            report(name + ": v", relative(gpu.download(qkvGpu.v()), reference.download(qkvRef.v())), BF16_RELATIVE,
                    "");
            float[] q = reference.download(qkvRef.q());
            float[] k = reference.download(qkvRef.k());
            float[] v = reference.download(qkvRef.v());
            try (KvCache cacheRef = KvTesting.layerZero(reference, keyPositions, k, v);
                 KvCache cacheGpu = KvTesting.layerZero(gpu, keyPositions, k, v);
                 KvCache empty = gpu.newKvCache(1)) {
                int[] qShape = {rows, config.heads(), hd};
                Partial pRef = reference.attend(a, reference.upload(a, q, qShape), positions, cacheRef, 0);
                Partial pGpu = gpu.attend(b, gpu.upload(b, q, qShape), positions, cacheGpu, 0);
                report(name + ": attention output (37 rows, causal)", relative(gpu.download(pGpu.output()),
                        reference.download(pRef.output())), BF16_RELATIVE, "");
                report(name + ": attention lse", relative(gpu.download(pGpu.lse()), reference.download(pRef.lse())),
                        BF16_RELATIVE, "");
                // one row after every key: the split-KV path, all keys visible (a remote block)
                float[] q1 = Arrays.copyOfRange(q, 0, config.queryWidth());
                int[] later = {9000};
                Partial dRef = reference.attend(a, reference.upload(a, q1, 1, config.heads(), hd), later, cacheRef, 0);
                Partial dGpu = gpu.attend(b, gpu.upload(b, q1, 1, config.heads(), hd), later, cacheGpu, 0);
                report(name + ": attention 1 row, all visible", relative(gpu.download(dGpu.output()),
                        reference.download(dRef.output())), BF16_RELATIVE, "");
                report(name + ": attention 1 row lse", relative(gpu.download(dGpu.lse()),
                        reference.download(dRef.lse())), BF16_RELATIVE, "");
                AttentionPartial none = gpu.download(gpu.attend(b, gpu.upload(b, q1, 1, config.heads(), hd), later,
                        empty, 0));
                boolean emptyOk = Arrays.equals(none.output(), new float[none.output().length]);
                for (float l : none.lse()) {
                    emptyOk &= l == Float.NEGATIVE_INFINITY;
                }
                check(name + ": attention over no key: 0 and -inf", emptyOk, "");
                Partial mRef = reference.merge(a, List.of(pRef, reference.upload(a,
                        AttentionPartial.empty(rows, config.heads(), hd)), pRef));
                Partial mGpu = gpu.merge(b, List.of(pGpu, gpu.upload(b,
                        AttentionPartial.empty(rows, config.heads(), hd)), pGpu));
                report(name + ": merge (with an empty partial)", relative(gpu.download(mGpu.output()),
                        reference.download(mRef.output())), BF16_RELATIVE, "");
                // phase 1 over [anchor; block]: both caches in one call (one launch on hd 128, else two + merge)
                int[] anchorPositions = new int[rows];
                for (int i = 0; i < rows; i++) {
                    anchorPositions[i] = 2 * i; // all before the block: every anchor key visible
                }
                try (KvCache anchorRef = KvTesting.layerZero(reference, anchorPositions, v, k);
                     KvCache anchorGpu = KvTesting.layerZero(gpu, anchorPositions, v, k)) {
                    Partial bRef = reference.attendBoth(a, reference.upload(a, q, qShape), positions, anchorRef,
                            cacheRef, 0);
                    Partial bGpu = gpu.attendBoth(b, gpu.upload(b, q, qShape), positions, anchorGpu, cacheGpu, 0);
                    report(name + ": attendBoth [anchor; block]", relative(gpu.download(bGpu.output()),
                            reference.download(bRef.output())), BF16_RELATIVE, "");
                    report(name + ": attendBoth lse", relative(gpu.download(bGpu.lse()),
                            reference.download(bRef.lse())), BF16_RELATIVE, "");
                    Partial eGpu = gpu.attendBoth(b, gpu.upload(b, q, qShape), positions, empty, cacheGpu, 0);
                    report(name + ": attendBoth with an empty first cache", relative(gpu.download(eGpu.output()),
                            reference.download(pRef.output())), BF16_RELATIVE, "");
                }
                float[] attention = reference.download(pRef.output());
                Tensor nextRef = reference.finishLayer(a, 0, xRef, pRef.output());
                Tensor nextGpu = gpu.finishLayer(b, 0, xGpu, gpu.upload(b, attention, qShape));
                report(name + ": finishLayer", relative(gpu.download(nextGpu), reference.download(nextRef)),
                        BF16_RELATIVE, "");
                report(name + ": logits", relative(gpu.logits(nextGpu), reference.logits(nextRef)), BF16_RELATIVE,
                        "");
                report(name + ": rows", relative(gpu.download(gpu.rows(b, nextGpu, 5, 9)),
                        reference.download(reference.rows(a, nextRef, 5, 9))), BF16_RELATIVE, "");
            }
        }
    }

    // ------------------------------------------------------------------ resources

    private static void resourcesStayFlat() {
        ModelConfig config = RandomModels.config(512, 2, 8, 2, 300);
        Random random = new Random(7);
        try (GpuBackend gpu = new GpuBackend(config, RandomModels.weights(config, 3), KvPrecision.BF16, 0);
             KvCache block = gpu.newKvCache(64)) {
            Transformer transformer = new Transformer(gpu);
            transformer.forward(RandomModels.tokens(random, 64, 300), Transformer.range(0, 64), List.of(), block,
                    false);
            long handles = gpu.liveHandles();
            for (int i = 0; i < 200; i++) {
                Passes.prefillDecodeAndQueryHost(transformer, block, random, 300);
            }
            gpu.synchronize();
            long inUse = gpu.deviceBytesInUse();
            long driverUsed = gpu.deviceMemory()[0];
            boolean handlesFlat = true;
            for (int i = 0; i < 3000; i++) {
                Passes.prefillDecodeAndQueryHost(transformer, block, random, 300);
                handlesFlat &= gpu.liveHandles() == handles;
            }
            gpu.synchronize();
            check("3,000 passes: no handle outlives its scope", handlesFlat, "open handles " + gpu.liveHandles()
                    + " (before: " + handles + ")");
            check("3,000 passes: device memory in tensors and caches flat", gpu.deviceBytesInUse() == inUse,
                    inUse + " -> " + gpu.deviceBytesInUse() + " bytes");
            long driverGrowth = gpu.deviceMemory()[0] - driverUsed;
            check("3,000 passes: device memory used (driver) flat", driverGrowth <= 0,
                    "grew by " + driverGrowth + " bytes");
        }
    }

    // ------------------------------------------------------------------ whole model

    private static void ownModelLogits(GpuBackend gpu, Path dir, Path cpuReference) throws Exception {
        ObjectMapper json = new ObjectMapper();
        JsonNode hf = json.readTree(dir.resolve("reference/hf_logits.json").toFile());
        JsonNode cpu = cpuReference == null ? null : json.readTree(cpuReference.toFile());
        Transformer transformer = new Transformer(gpu);
        int vocab = gpu.config().vocabSize();
        double worstHf = 0;
        double worstCpu = 0;
        int agree = 0;
        int positions = 0;
        int nearTies = 0;
        int p = 0;
        for (JsonNode prompt : hf.get("prompts")) {
            int[] tokens = json.treeToValue(prompt.get("token_ids"), int[].class);
            float[] logits;
            try (KvCache cache = gpu.newKvCache(tokens.length); Arena arena = new Arena()) {
                logits = gpu.logits(transformer.hidden(arena, tokens, Transformer.range(0, tokens.length), List.of(),
                        cache));
            }
            int[] argmax = json.treeToValue(prompt.get("argmax_ids"), int[].class);
            for (int t = 0; t < tokens.length; t++) {
                float[] row = Arrays.copyOfRange(logits, t * vocab, (t + 1) * vocab);
                positions++;
                if (Sampler.argmax(row) == argmax[t]) {
                    agree++;
                } else if (Passes.topTwoGap(row) < 0.25) {
                    nearTies++;
                }
            }
            float[] last = Arrays.copyOfRange(logits, logits.length - vocab, logits.length);
            worstHf = Math.max(worstHf, maxAbs(last, json.treeToValue(prompt.get("last_logits"), float[].class)));
            if (cpu != null) {
                worstCpu = Math.max(worstCpu, maxAbs(last, json.treeToValue(cpu.get("prompts").get(p)
                        .get("last_logits"), float[].class)));
            }
            p++;
        }
        report("own model: last-position logits vs transformers (fp32), max abs", worstHf, 0.15, "");
        if (cpu != null) {
            report("own model: last-position logits vs the CPU engine (bf16 KV)", worstCpu, 0.15, "");
        }
        check("own model: argmax vs transformers at every position", agree + nearTies == positions,
                agree + " of " + positions + " equal, " + nearTies + " of the others near-ties (top-2 gap < 0.25), "
                        + (positions - agree - nearTies) + " real disagreements");
    }

    private static double maxAbs(float[] a, float[] b) {
        double worst = 0;
        for (int i = 0; i < a.length; i++) {
            worst = Math.max(worst, Math.abs(a[i] - b[i]));
        }
        return worst;
    }

    private static void greedyEvalAnswers(GpuBackend gpu, ModelConfig config, Path cpuReference) throws Exception {
        JsonNode cpu = new ObjectMapper().readTree(cpuReference.toFile());
        Model model = new Model("starflink-synth-14m", config, null, null);
        LongContextGenerator generator = new LongContextGenerator(model, new Transformer(gpu));
        int maxNew = cpu.get("max_new_tokens").asInt();
        for (String mode : List.of("global", "star-N/4")) {
            int equal = 0;
            int total = 0;
            List<String> differences = new ArrayList<>();
            for (JsonNode instance : cpu.get("instances")) {
                if (!instance.has(mode + "_tokens")) {
                    continue;
                }
                ObjectMapper json = new ObjectMapper();
                int[] context = json.treeToValue(instance.get("context_ids"), int[].class);
                int[] question = json.treeToValue(instance.get("question_ids"), int[].class);
                int[] expected = json.treeToValue(instance.get(mode + "_tokens"), int[].class);
                double[] gaps = json.treeToValue(instance.get(mode + "_top2_gaps"), double[].class);
                int block = instance.get(mode + "_block_size").asInt();
                GreedyRun run = GreedyRun.of(generator, config.eosIds(), context, question,
                        BlockLayout.of(block), maxNew);
                total++;
                if (Arrays.equals(run.tokens(), expected)) {
                    equal++;
                } else {
                    int step = 0;
                    while (step < Math.min(expected.length, run.tokens().length)
                            && expected[step] == run.tokens()[step]) {
                        step++;
                    }
                    differences.add(String.format("%s@%d#%d diverges at token %d (CPU top-2 gap there %.3f)",
                            instance.get("task").asText(), instance.get("length").asInt(),
                            instance.get("index").asInt(), step, step < gaps.length ? gaps[step] : Double.NaN));
                }
            }
            System.out.println("  " + mode + " differences: " + (differences.isEmpty() ? "none" : differences));
            check("eval instances, " + mode + ": greedy tokens equal to the CPU engine", equal == total,
                    equal + " of " + total + " identical");
        }
    }

    private static void randomHfCheckpoints() throws Exception {
        Path root = Files.createTempDirectory("starflink-gpucheck");
        List<Object[]> checkpoints = List.of(
                new Object[] {"llama3 GQA bf16", RandomHfCheckpoint.builder().llama3Scaling(true).dim(64).heads(8)
                        .kvHeads(2).hidden(96).layers(3)},
                new Object[] {"qwen2 biases f16 tied", RandomHfCheckpoint.builder().architecture("Qwen2ForCausalLM")
                        .qkvBias(true).tied(true).format(FloatFormat.F16).sharded(false)});
        int i = 0;
        for (Object[] c : checkpoints) {
            Path dir = root.resolve("c" + i++);
            ((RandomHfCheckpoint.Builder) c[1]).writeTo(dir);
            ModelConfig config = HfConfig.read(dir);
            WeightSource weights = HfCheckpoint.weights(dir, config);
            Backend reference = new ReferenceBackend(config, weights, KvPrecision.F32);
            int[] tokens = RandomModels.tokens(new Random(9), 40, Math.min(config.vocabSize(), 256));
            try (GpuBackend gpu = new GpuBackend(config, weights, KvPrecision.BF16, 0)) {
                report("random HF checkpoint " + c[0] + ": last logits vs the reference",
                        relative(lastLogits(gpu, tokens), lastLogits(reference, tokens)), BF16_RELATIVE, "");
            }
        }
    }

    private static float[] lastLogits(Backend backend, int[] tokens) {
        try (KvCache cache = backend.newKvCache(tokens.length)) {
            return new Transformer(backend).forward(tokens, Transformer.range(0, tokens.length), List.of(), cache,
                    true);
        }
    }

}
