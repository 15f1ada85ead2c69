package org.starflink.benchmarks;

import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import java.util.Set;
import org.starflink.engine.attention.AttentionPartial;
import org.starflink.engine.backend.Arena;
import org.starflink.engine.backend.Backend;
import org.starflink.engine.backend.CpuKernels;
import org.starflink.engine.backend.HandleLedger;
import org.starflink.engine.backend.HostKvCache;
import org.starflink.engine.backend.HostTensor;
import org.starflink.engine.backend.KvCache;
import org.starflink.engine.backend.KvPrecision;
import org.starflink.engine.backend.Tensor;
import org.starflink.engine.backend.djl.DjlBackend;
import org.starflink.engine.checkpoint.HfConfig;
import org.starflink.engine.model.ModelConfig;

/**
 * The few-row attention loop alone: R query rows (one decode row per question of a batch) over S keys, {@link
 * CpuKernels#attend} over a BF16 and an F32 cache and a sealed BF16 one (its keys and values widened once, as a
 * block in the block operator's LRU keeps them), next to the per-pair loop as it was before the stacked loop nest
 * (4cbe055's JavaAttention over float32 keys read in place, copied in {@link #before}; CpuKernels kept that loop for
 * masked keys), alternately, five rounds. Every key is visible to every row, as at a remote context block, so
 * CpuKernels takes its stacked loop nest ({@code StackedAttention}); the R rows go through it in one call, the
 * per-pair loop takes one call per row (it does not share anything between rows).
 *
 * <p>With {@code --blocks N} the sealed case also runs over N sealed caches in turn, a call per cache, as a block
 * subtask serves its blocks one after another: their keys and values are out of the CPU's caches on every call,
 * which the job sees and a single cache read again and again hides.
 *
 * <p>With {@code --libtorch} (synth-14m only) the sealed case also runs through the CPU backend's {@code attend}
 * for every row count above its Java limit ({@link DjlBackend#JAVA_VISIBLE_ATTENTION_MAX_ROWS} rows that see every
 * key), where it hands the rows to libtorch: the numbers that set that limit, on this machine (run it with that
 * limit lowered to compare the row counts below it).
 *
 * <p>Usage: bin/benchmark attention-kernel [--keys S (320)] [--model stories260K|synth-14m] [--rows 1,4,16]
 * [--blocks N (0: off)] [--libtorch]
 */
public final class AttentionKernelBenchmark {
    /** About this many key-row products per measured loop, whatever S and R. */
    private static final long WORK = 2_000_000_000L;

    public static void main(String[] args) {
        boolean synth = BenchArgs.option(args, "--model", "stories260K").equals("synth-14m");
        Path synthPath = Path.of(System.getProperty("starflink.project.dir", "."), "models/starflink-synth-14m");
        ModelConfig c = synth ? HfConfig.read(synthPath) : Stories260K.load().config();
        boolean libtorch = List.of(args).contains("--libtorch");
        if (libtorch && !synth) {
            throw new IllegalArgumentException("--libtorch needs --model synth-14m (its backend's weights)");
        }
        int keyCount = Integer.parseInt(BenchArgs.option(args, "--keys", "320"));
        List<Integer> rowCounts = BenchArgs.ints(BenchArgs.option(args, "--rows", "1"));
        int width = c.kvWidth();
        int hd = c.headDim();
        System.out.println("# machine: " + Machine.describe() + ", load average " + EngineProfile.loadAverage());
        System.out.printf("# %d heads, %d KV heads, hd %d, %d keys, every key visible to every row%n", c.heads(),
                c.kvHeads(), hd, keyCount);
        Random random = new Random(1);
        float[] keys = new float[keyCount * width];
        float[] values = new float[keyCount * width];
        for (int i = 0; i < keys.length; i++) {
            keys[i] = (float) random.nextGaussian();
            values[i] = (float) random.nextGaussian();
        }
        int[] positions = new int[keyCount];
        for (int i = 0; i < keyCount; i++) {
            positions[i] = i;
        }
        HandleLedger ledger = new HandleLedger();
        // a BF16 and an F32 cache widened on every call, and a sealed BF16 one (a block in the block operator's LRU)
        KvPrecision[] precisions = {KvPrecision.BF16, KvPrecision.F32, KvPrecision.BF16};
        String[] labels = {"BF16", "F32", "BF16, sealed (widened once)"};
        HostKvCache[] caches = new HostKvCache[precisions.length];
        for (int p = 0; p < precisions.length; p++) {
            caches[p] = new HostKvCache(c.layers(), width, hd, precisions[p], keyCount, ledger,
                    t -> ((HostTensor) t).data());
            caches[p].append(0, positions, new HostTensor(ledger, keys, keyCount, c.kvHeads(), hd),
                    new HostTensor(ledger, values, keyCount, c.kvHeads(), hd));
        }
        caches[2].seal();
        int blockCount = Integer.parseInt(BenchArgs.option(args, "--blocks", "0"));
        HostKvCache[] blocks = new HostKvCache[blockCount];
        for (int b = 0; b < blockCount; b++) {
            float[] blockKeys = new float[keys.length];
            float[] blockValues = new float[values.length];
            for (int i = 0; i < keys.length; i++) {
                blockKeys[i] = (float) random.nextGaussian();
                blockValues[i] = (float) random.nextGaussian();
            }
            blocks[b] = new HostKvCache(c.layers(), width, hd, KvPrecision.BF16, keyCount, ledger,
                    t -> ((HostTensor) t).data());
            blocks[b].append(0, positions, new HostTensor(ledger, blockKeys, keyCount, c.kvHeads(), hd),
                    new HostTensor(ledger, blockValues, keyCount, c.kvHeads(), hd));
            blocks[b].seal();
        }
        // the CPU backend of the model and a sealed BF16 cache of its own, for --libtorch
        Backend backend = libtorch ? LocalJobs.cpuModel(synthPath).backend(Set.of()) : null;
        KvCache backendCache = null;
        if (libtorch) {
            backendCache = backend.newKvCache(keyCount);
            try (Arena arena = new Arena()) {
                backendCache.append(0, positions, backend.upload(arena, keys, keyCount, c.kvHeads(), hd),
                        backend.upload(arena, values, keyCount, c.kvHeads(), hd));
            }
            backendCache.seal();
        }
        double sink = 0;
        System.out.println("| round | rows | loop | KV | us per call | us per row |");
        System.out.println("|---:|---:|---|---|---:|---:|");
        for (int round = 1; round <= 5; round++) {
            for (int rows : rowCounts) {
                int rowWidth = c.heads() * hd;
                float[] q = new float[rows * rowWidth];
                for (int i = 0; i < q.length; i++) {
                    q[i] = (float) random.nextGaussian();
                }
                int[] queryPositions = new int[rows];
                java.util.Arrays.fill(queryPositions, keyCount);
                long calls = Math.max(1, WORK / ((long) keyCount * c.heads() * rows * 64));
                for (int p = 0; p < precisions.length; p++) {
                    long start = System.nanoTime();
                    for (long i = 0; i < calls; i++) {
                        sink += CpuKernels.attend(c, q, queryPositions, caches[p], 0).lse()[0];
                    }
                    print(round, rows, "CpuKernels.attend (stacked)", labels[p], start, calls);
                }
                if (blockCount > 0) {
                    long start = System.nanoTime();
                    for (long i = 0; i < calls; i++) {
                        sink += CpuKernels.attend(c, q, queryPositions, blocks[(int) (i % blockCount)], 0).lse()[0];
                    }
                    print(round, rows, "CpuKernels.attend (stacked)", "BF16, sealed, " + blockCount
                            + " caches in turn", start, calls);
                }
                // above the Java limit, the backend's path for these rows is libtorch
                if (libtorch && rows > DjlBackend.JAVA_VISIBLE_ATTENTION_MAX_ROWS) {
                    long start = System.nanoTime();
                    try (Arena arena = new Arena()) {
                        Tensor qTensor = backend.upload(arena, q, rows, c.heads(), hd);
                        for (long i = 0; i < calls; i++) {
                            try (Arena call = new Arena()) {
                                sink += backend.download(backend.attend(call, qTensor, queryPositions, backendCache,
                                        0).lse())[0];
                            }
                        }
                    }
                    print(round, rows, "CPU backend's attend (libtorch)", "BF16, sealed", start, calls);
                }
                long start = System.nanoTime();
                for (long i = 0; i < calls; i++) {
                    for (int t = 0; t < rows; t++) {
                        float[] row = java.util.Arrays.copyOfRange(q, t * rowWidth, (t + 1) * rowWidth);
                        sink += before(c, row, new int[] {keyCount}, positions, keys, values, keyCount).lse()[0];
                    }
                }
                print(round, rows, "per pair (4cbe055), a call per row", "F32 in place", start, calls);
            }
        }
        System.out.println(sink == 42 ? "" : "# done");
    }

    private static void print(int round, int rows, String loop, String kv, long start, long calls) {
        double perCall = (System.nanoTime() - start) / 1e3 / calls;
        System.out.printf("| %d | %d | %s | %s | %.1f | %.1f |%n", round, rows, loop, kv, perCall, perCall / rows);
    }

    /** 4cbe055's JavaAttention.attend, its KvSpan unpacked into arrays. */
    static AttentionPartial before(ModelConfig config, float[] q, int[] queryPositions, int[] keyPositions,
                                   float[] keys, float[] values, int keyCount) {
        int rows = queryPositions.length;
        int heads = config.heads();
        int kvHeads = config.kvHeads();
        int group = config.groupSize();
        int hd = config.headDim();
        float scale = (float) (1.0 / Math.sqrt(hd));
        float[] output = new float[rows * heads * hd];
        float[] lse = new float[rows * heads];
        float[] scores = new float[keyCount];
        for (int t = 0; t < rows; t++) {
            int queryPosition = queryPositions[t];
            for (int h = 0; h < heads; h++) {
                int kvOffset = (h / group) * hd;
                int qBase = (t * heads + h) * hd;
                float max = Float.NEGATIVE_INFINITY;
                for (int s = 0; s < keyCount; s++) {
                    if (keyPositions[s] > queryPosition) {
                        scores[s] = Float.NEGATIVE_INFINITY;
                        continue;
                    }
                    int kBase = s * kvHeads * hd + kvOffset;
                    float dot = 0f;
                    for (int i = 0; i < hd; i++) {
                        dot += q[qBase + i] * keys[kBase + i];
                    }
                    scores[s] = dot * scale;
                    max = Math.max(max, scores[s]);
                }
                if (max == Float.NEGATIVE_INFINITY) {
                    lse[t * heads + h] = Float.NEGATIVE_INFINITY;
                    continue; // no visible key: zero output
                }
                float sum = 0f;
                for (int s = 0; s < keyCount; s++) {
                    if (scores[s] == Float.NEGATIVE_INFINITY) {
                        continue;
                    }
                    float p = (float) Math.exp(scores[s] - max);
                    sum += p;
                    int vBase = s * kvHeads * hd + kvOffset;
                    for (int i = 0; i < hd; i++) {
                        output[qBase + i] += p * values[vBase + i];
                    }
                }
                float inverse = 1f / sum;
                for (int i = 0; i < hd; i++) {
                    output[qBase + i] *= inverse;
                }
                lse[t * heads + h] = max + (float) Math.log(sum);
            }
        }
        return new AttentionPartial(rows, heads, output, lse);
    }
}
