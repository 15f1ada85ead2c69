package org.starflink.benchmarks;

import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import org.starflink.engine.attention.AttentionPartial;
import org.starflink.engine.attention.LayerRequest;
import org.starflink.engine.backend.HandleLedger;
import org.starflink.engine.backend.HostKvCache;
import org.starflink.engine.backend.HostTensor;
import org.starflink.engine.backend.KvCache;
import org.starflink.engine.backend.KvPrecision;
import org.starflink.engine.checkpoint.HfConfig;
import org.starflink.engine.forward.Transformer;
import org.starflink.engine.model.ModelConfig;
import org.starflink.engine.model.RopeStyle;
import org.starflink.engine.wire.HostState;
import org.starflink.engine.wire.KvPage;
import org.starflink.engine.wire.KvPages;
import org.starflink.engine.wire.PhaseTwoCodec;

/**
 * Bytes per token of KV as the job stores it (KV pages in RocksDB and checkpoints, the query host's own KV in its
 * state) with float32 and BF16 KV, and what phase 2 ships per token and layer (unchanged: float32), measured by
 * serializing real pages and messages, for the project's model and a Llama-3.1-8B-shaped config.
 * Usage: bin/benchmark kv-bytes
 */
public final class KvBytesReport {
    private static final int PAGE_TOKENS = 64; // starflink.kv-page-tokens default
    private static final int TOKENS = 4096;

    public static void main(String[] args) {
        ModelConfig own = HfConfig.read(Path.of(System.getProperty("starflink.project.dir", "."),
                "models/starflink-synth-14m"));
        ModelConfig llama8b = new ModelConfig("Llama-3.1-8B-shaped", 4096, 14336, 32, 32, 8, 128, 128256, 131072,
                500000.0, RopeStyle.HALVES, null, 1e-5, false, false, 128000, Set.of(128001));
        System.out.println("# KV bytes per token (" + TOKENS + "-token block in " + PAGE_TOKENS
                + "-token pages; phase-2 messages for one query row)");
        System.out.printf("%-22s %6s %8s %14s %14s %8s %16s %16s%n", "model", "layers", "kvWidth", "state f32 B/tok",
                "state bf16 B/tok", "ratio", "request B/layer", "partial B/layer");
        for (ModelConfig config : List.of(own, llama8b)) {
            String label = config == own ? "starflink-synth-14m" : config.architecture();
            double f32 = stateBytesPerToken(config, KvPrecision.F32);
            double bf16 = stateBytesPerToken(config, KvPrecision.BF16);
            float[] q = new float[config.queryWidth()];
            int request = PhaseTwoCodec.toBytes(new LayerRequest(0, new int[] {TOKENS}, q)).length;
            int partial = PhaseTwoCodec.toBytes(new AttentionPartial(1, config.heads(), q,
                    new float[config.heads()])).length;
            System.out.printf("%-22s %6d %8d %14.1f %14.1f %8.3f %16d %16d%n", label,
                    config.layers(), config.kvWidth(), f32, bf16, bf16 / f32, request, partial);
        }
        System.out.println("# query-host state written per generated token, with 300 question + answer tokens");
        System.out.printf("%-22s %18s %18s %10s%n", "model", "before B/token", "after B/token", "ratio");
        for (ModelConfig config : List.of(own, llama8b)) {
            long[] bytes = hostBytesPerToken(config, 300);
            System.out.printf("%-22s %18d %18d %10.4f%n", config == own ? "starflink-synth-14m" : config.architecture(),
                    bytes[0], bytes[1], (double) bytes[1] / bytes[0]);
        }
    }

    /**
     * Query-host state written per generated token, before and after its KV went into pages: before, every layer
     * rewrote the whole serialized host (version 1: its float32 KV of {@code tokens} tokens, x, its own partial,
     * the last logits); after, every layer writes the pass state (x and q of one row) and the one KV page the
     * token landed in (16 tokens a page, on average 8.5 full), measured by serializing them.
     */
    static long[] hostBytesPerToken(ModelConfig c, int tokens) {
        long kvF32 = 2L * tokens * c.layers() * c.kvWidth() * Float.BYTES;
        long before = c.layers() * (kvF32 + (long) c.dim() * Float.BYTES
                + (long) (c.queryWidth() + c.heads()) * Float.BYTES + (long) c.vocabSize() * Float.BYTES);
        byte[] pass = new HostState(tokens, 0, new int[] {tokens}, new float[c.dim()], new float[c.queryWidth()],
                null, List.of()).toBytes();
        double pageBytes = 19 + 8.5 * 2 * c.kvWidth() * KvPrecision.BF16.bytes;
        long after = Math.round(c.layers() * (pass.length + pageBytes));
        return new long[] {before, after};
    }

    /** Serialized page bytes of a {@link #TOKENS}-token cache, every layer, divided by the tokens. */
    private static double stateBytesPerToken(ModelConfig config, KvPrecision precision) {
        HandleLedger ledger = new HandleLedger();
        int width = config.kvWidth();
        try (KvCache cache = new HostKvCache(config.layers(), width, config.headDim(), precision, TOKENS, ledger,
                t -> ((HostTensor) t).data())) {
            for (int layer = 0; layer < config.layers(); layer++) {
                float[] values = new float[TOKENS * width];
                for (int i = 0; i < values.length; i++) {
                    values[i] = (float) Math.sin(i); // any values: the size does not depend on them
                }
                int[] shape = {TOKENS, config.kvHeads(), config.headDim()};
                try (HostTensor k = new HostTensor(ledger, values, shape);
                     HostTensor v = new HostTensor(ledger, values, shape)) {
                    cache.append(layer, Transformer.range(0, TOKENS), k, v);
                }
            }
            long bytes = 0;
            for (KvPage page : KvPages.pagesFrom(cache, PAGE_TOKENS, 0)) {
                bytes += page.toBytes().length;
            }
            return (double) bytes / TOKENS;
        }
    }
}
