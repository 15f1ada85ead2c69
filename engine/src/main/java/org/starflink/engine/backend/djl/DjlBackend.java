package org.starflink.engine.backend.djl;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import java.nio.IntBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.starflink.engine.DjlOffline;
import org.starflink.engine.EngineException;
import org.starflink.engine.attention.AttentionPartial;
import org.starflink.engine.backend.Arena;
import org.starflink.engine.backend.Backend;
import org.starflink.engine.backend.CpuKernels;
import org.starflink.engine.backend.FewRowDense;
import org.starflink.engine.backend.HandleLedger;
import org.starflink.engine.backend.HostKvCache;
import org.starflink.engine.backend.HostTensor;
import org.starflink.engine.backend.KvCache;
import org.starflink.engine.backend.KvPrecision;
import org.starflink.engine.backend.Partial;
import org.starflink.engine.backend.Qkv;
import org.starflink.engine.backend.Rope;
import org.starflink.engine.backend.Tensor;
import org.starflink.engine.backend.TokenEmbedding;
import org.starflink.engine.model.ModelConfig;
import org.starflink.engine.model.WeightName;
import org.starflink.engine.model.WeightName.Kind;
import org.starflink.engine.model.WeightSource;

/**
 * The CPU backend on PyTorch (libtorch 2.7.1) through DJL. Weights are read from the checkpoint one layer at a
 * time into native float32 tensors (DJL cannot hold BF16: any BF16 tensor kills the JVM) and into a float32 copy on
 * the heap for the few-row path: up to {@link #JAVA_DENSE_MAX_ROWS} rows (decode steps, short prompts, a query
 * host's batch) a layer's matrix products run in Java ({@link FewRowDense}), beyond it in libtorch, whose residual
 * stream then stays native between layers ({@link DjlTensor}). q/k/v come back to the heap because RoPE, the KV
 * cache and the few-row attention run in Java ({@link HostTensor}, {@link HostKvCache}): those are O(T * width),
 * noise next to the matrix products, and sharing them with the reference removes a source of disagreement. Every
 * op opens a sub-manager for its temporaries and closes it before returning; results that outlive the op are
 * attached to the backend's manager and freed by their arena.
 *
 * <p>DJL runs offline ({@link DjlOffline}), libtorch on one thread per calling thread unless configured otherwise
 * ({@link LibtorchThreads}); libtorch is extracted once under DJL_CACHE_DIR.
 */
public final class DjlBackend implements Backend {
    /** Attention scores are materialized per chunk of query rows; this caps one chunk's score tensor. */
    private static final long MAX_SCORE_ELEMENTS = 4L << 20;
    /**
     * Up to this many query rows, attention runs in Java over the keys in place: copying S keys into libtorch
     * costs more than one pass over them (measured on stories260K: 1.1 ms per call through DJL at S = 300).
     */
    private static final int JAVA_ATTENTION_MAX_ROWS = 4;
    /**
     * Up to this many rows over keys that every row sees (a question's prompt at a remote block), attention runs in
     * Java too, in {@link CpuKernels}'s stacked loop nest: measured on the project's model over 1024 sealed keys
     * ({@code bin/benchmark attention-kernel --model synth-14m --keys 1024 --rows 16,24,32,48,64 --libtorch}, 2-core
     * AMD EPYC, libtorch on both cores), 1.15 ms against libtorch's 1.75 at 24 rows, 1.5 against 1.9 at 32, 2.3
     * against 2.7 at 48, 3.0-3.2 against 3.1-3.5 at 64 (docs/figures/concurrency/attention-kernel-libtorch-limit-*;
     * measured while this limit was 16: the harness times libtorch only above it).
     * Above it libtorch's threads may win; the job gives libtorch one thread per task slot, which favors Java more.
     */
    public static final int JAVA_VISIBLE_ATTENTION_MAX_ROWS = 64;
    /**
     * Up to this many rows, a layer's projections, MLP and the output head run in Java ({@link FewRowDense}, rows
     * independent of each other), so that a query host's batch stacks its members' rows into one pass over each
     * weight matrix ({@link #projectQkvEach}, {@link #finishLayerEach}, {@link #logitsEach}) and one libtorch call
     * per op does not cost more than its few rows' arithmetic. Decided per set of rows, never per batch.
     */
    private static final int JAVA_DENSE_MAX_ROWS = 16;

    private final ModelConfig config;
    private final KvPrecision kvPrecision;
    private final float[] tokenEmbedding;
    private final Rope rope;
    private final NDManager manager;
    private final HandleLedger ledger = new HandleLedger();
    private final List<NativeLayer> layers = new ArrayList<>();
    private final NDArray finalNorm;
    /** [dim, vocab]: a transposed view of the [vocab, dim] head. */
    private final NDArray outputHeadT;

    /** One layer's weights as native tensors; projections are transposed views [in, out] of the HF [out, in]. */
    private record NativeLayer(NDArray attentionNorm, NDArray wqT, NDArray wkT, NDArray wvT,
                               NDArray bq, NDArray bk, NDArray bv, NDArray woT, NDArray ffnNorm,
                               NDArray wGateT, NDArray wUpT, NDArray wDownT) {
    }

    /**
     * The same layer's weights on the heap for {@link FewRowDense}, one array per input row ([in][out]): q, k and v
     * side by side in one matrix [dim][qWidth + 2 kvWidth] (bias likewise, or null), gate and up in one
     * [dim][2 hidden].
     */
    private record DenseLayer(float[] attentionNorm, float[][] wQkv, float[] bQkv, float[][] wo, float[] ffnNorm,
                              float[][] wGateUp, float[][] wDown) {
    }

    private final List<DenseLayer> dense = new ArrayList<>();
    private final float[] finalNormDense;
    /** [dim, vocab]. */
    private final float[][] outputHeadDense;

    public DjlBackend(ModelConfig config, WeightSource weights, KvPrecision kvPrecision) {
        DjlOffline.ensure();
        LibtorchThreads.ensure(1);
        this.config = config;
        this.kvPrecision = kvPrecision;
        this.rope = new Rope(config);
        try {
            this.manager = NDManager.newBaseManager(Device.cpu(), Engine.getEngine("PyTorch").getEngineName());
        } catch (RuntimeException | UnsatisfiedLinkError e) {
            throw new EngineException("cannot start the PyTorch engine (DJL): " + e.getMessage(), e);
        }
        // The embedding lookup runs in Java, so the table stays on the heap (the one tensor that does).
        this.tokenEmbedding = weights.read(WeightName.of(Kind.TOKEN_EMBEDDING));
        for (int l = 0; l < config.layers(); l++) {
            boolean bias = config.qkvBias();
            float[][] w = new float[Kind.values().length][];
            for (Kind kind : new Kind[] {Kind.ATTENTION_NORM, Kind.WQ, Kind.WK, Kind.WV, Kind.WO, Kind.FFN_NORM,
                    Kind.W_GATE, Kind.W_UP, Kind.W_DOWN}) {
                w[kind.ordinal()] = weights.read(new WeightName(kind, l));
            }
            if (bias) {
                for (Kind kind : new Kind[] {Kind.BQ, Kind.BK, Kind.BV}) {
                    w[kind.ordinal()] = weights.read(new WeightName(kind, l));
                }
            }
            layers.add(new NativeLayer(
                    vector(w, Kind.ATTENTION_NORM),
                    transposed(w, Kind.WQ, l), transposed(w, Kind.WK, l), transposed(w, Kind.WV, l),
                    bias ? vector(w, Kind.BQ) : null,
                    bias ? vector(w, Kind.BK) : null,
                    bias ? vector(w, Kind.BV) : null,
                    transposed(w, Kind.WO, l),
                    vector(w, Kind.FFN_NORM),
                    transposed(w, Kind.W_GATE, l), transposed(w, Kind.W_UP, l),
                    transposed(w, Kind.W_DOWN, l)));
            int dim = config.dim();
            dense.add(new DenseLayer(w[Kind.ATTENTION_NORM.ordinal()],
                    FewRowDense.inputRows(dim, w[Kind.WQ.ordinal()], w[Kind.WK.ordinal()], w[Kind.WV.ordinal()]),
                    bias ? FewRowDense.stack(List.of(w[Kind.BQ.ordinal()], w[Kind.BK.ordinal()],
                            w[Kind.BV.ordinal()])) : null,
                    FewRowDense.inputRows(config.queryWidth(), w[Kind.WO.ordinal()]),
                    w[Kind.FFN_NORM.ordinal()],
                    FewRowDense.inputRows(dim, w[Kind.W_GATE.ordinal()], w[Kind.W_UP.ordinal()]),
                    FewRowDense.inputRows(config.hiddenDim(), w[Kind.W_DOWN.ordinal()])));
        }
        float[] finalNormValues = weights.read(WeightName.of(Kind.FINAL_NORM));
        this.finalNorm = manager.create(finalNormValues, new Shape(finalNormValues.length));
        this.finalNormDense = finalNormValues;
        WeightName head = WeightName.of(Kind.OUTPUT_HEAD);
        float[] headValues = config.tiedEmbeddings() ? tokenEmbedding : weights.read(head);
        this.outputHeadT = manager.create(headValues, new Shape(config.vocabSize(), config.dim())).transpose();
        this.outputHeadDense = FewRowDense.inputRows(config.dim(), headValues);
    }

    private NDArray vector(float[][] weights, Kind kind) {
        float[] values = weights[kind.ordinal()];
        return manager.create(values, new Shape(values.length));
    }

    /** w: [out, in] -> a transposed view [in, out], so that x [T, in] . view = x W^T. */
    private NDArray transposed(float[][] weights, Kind kind, int layer) {
        int[] shape = WeightName.of(kind, layer).shape(config);
        return manager.create(weights[kind.ordinal()], new Shape(shape[0], shape[1])).transpose();
    }

    @Override
    public String name() {
        return "djl-pytorch-cpu";
    }

    @Override
    public ModelConfig config() {
        return config;
    }

    @Override
    public KvPrecision kvPrecision() {
        return kvPrecision;
    }

    @Override
    public Tensor embed(Arena arena, int[] tokens) {
        return host(arena, TokenEmbedding.lookup(tokenEmbedding, config.dim(), tokens), tokens.length, config.dim());
    }

    @Override
    public Tensor upload(Arena arena, float[] values, int... shape) {
        return host(arena, values.clone(), shape);
    }

    @Override
    public float[] download(Tensor tensor) {
        return tensor instanceof HostTensor ? floats(tensor).clone() : floats(tensor);
    }

    @Override
    public Tensor rows(Arena arena, Tensor x, int from, int to) {
        if (x instanceof DjlTensor) {
            try (NDManager scope = manager.newSubManager()) {
                // a slice index built directly: the string form ("from:to") is formatted and parsed on every call
                NDArray slice = array(scope, x).get(new NDIndex().addSliceDim(from, to)).duplicate();
                slice.attach(manager); // outlives the scope: freed when its arena closes
                return arena.own(new DjlTensor(ledger, slice));
            }
        }
        int width = x.dim(1);
        return host(arena, Arrays.copyOfRange(floats(x), from * width, to * width), to - from, width);
    }

    @Override
    public Qkv projectQkv(Arena arena, int layer, Tensor x, int[] positions) {
        return projectQkvEach(arena, layer, List.of(x), List.of(positions)).get(0);
    }

    /** Sets of at most {@link #JAVA_DENSE_MAX_ROWS} rows stacked into one Java pass; larger sets in libtorch. */
    @Override
    public List<Qkv> projectQkvEach(Arena arena, int layer, List<Tensor> xs, List<int[]> positions) {
        Qkv[] out = new Qkv[xs.size()];
        List<Integer> small = new ArrayList<>();
        for (int set = 0; set < xs.size(); set++) {
            Tensor.requireShape(xs.get(set), "x", positions.get(set).length, config.dim());
            if (positions.get(set).length <= JAVA_DENSE_MAX_ROWS) {
                small.add(set);
            } else {
                out[set] = projectQkvNative(arena, layer, xs.get(set), positions.get(set));
            }
        }
        if (!small.isEmpty()) {
            DenseLayer w = dense.get(layer);
            int[] stackedPositions = FewRowDense.stackPositions(small.stream().map(positions::get).toList());
            int rows = stackedPositions.length;
            int dim = config.dim();
            int qWidth = config.queryWidth();
            int kvWidth = config.kvWidth();
            int width = qWidth + 2 * kvWidth;
            float[] normed = FewRowDense.rmsNorm(stackRows(xs, small), rows, dim, w.attentionNorm(),
                    (float) config.rmsNormEps());
            float[] qkv = FewRowDense.multiply(normed, rows, dim, w.wQkv(), width); // [rows, q | k | v]
            if (w.bQkv() != null) {
                for (int r = 0; r < rows; r++) {
                    for (int j = 0; j < width; j++) {
                        qkv[r * width + j] += w.bQkv()[j];
                    }
                }
            }
            float[] q = columns(qkv, rows, width, 0, qWidth);
            float[] k = columns(qkv, rows, width, qWidth, kvWidth);
            float[] v = columns(qkv, rows, width, qWidth + kvWidth, kvWidth);
            rope.apply(q, config.heads(), stackedPositions);
            rope.apply(k, config.kvHeads(), stackedPositions);
            int hd = config.headDim();
            int[] rowsPerSet = rowsPerSet(xs, small);
            List<float[]> qs = FewRowDense.unstack(q, rowsPerSet, qWidth);
            List<float[]> ks = FewRowDense.unstack(k, rowsPerSet, kvWidth);
            List<float[]> vs = FewRowDense.unstack(v, rowsPerSet, kvWidth);
            for (int i = 0; i < small.size(); i++) {
                int n = rowsPerSet[i];
                out[small.get(i)] = new Qkv(host(arena, qs.get(i), n, config.heads(), hd),
                        host(arena, ks.get(i), n, config.kvHeads(), hd),
                        host(arena, vs.get(i), n, config.kvHeads(), hd));
            }
        }
        return List.of(out);
    }

    private Qkv projectQkvNative(Arena arena, int layer, Tensor x, int[] positions) {
        int rows = positions.length;
        NativeLayer w = layers.get(layer);
        float[] q;
        float[] k;
        float[] v;
        try (NDManager scope = manager.newSubManager()) {
            NDArray normed = rmsNorm(array(scope, x), w.attentionNorm());
            q = withBias(normed.matMul(w.wqT()), w.bq()).toFloatArray();
            k = withBias(normed.matMul(w.wkT()), w.bk()).toFloatArray();
            v = withBias(normed.matMul(w.wvT()), w.bv()).toFloatArray();
        }
        rope.apply(q, config.heads(), positions);
        rope.apply(k, config.kvHeads(), positions);
        int hd = config.headDim();
        return new Qkv(host(arena, q, rows, config.heads(), hd), host(arena, k, rows, config.kvHeads(), hd),
                host(arena, v, rows, config.kvHeads(), hd));
    }

    private static NDArray withBias(NDArray y, NDArray bias) {
        return bias == null ? y : y.add(bias);
    }

    @Override
    public KvCache newKvCache(int expectedTokens) {
        return new HostKvCache(config.layers(), config.kvWidth(), config.headDim(), kvPrecision, expectedTokens,
                ledger, this::floats);
    }

    @Override
    public Partial attend(Arena arena, Tensor qTensor, int[] queryPositions, KvCache kvCache, int layer) {
        int rows = queryPositions.length;
        int heads = config.heads();
        int hd = config.headDim();
        Tensor.requireShape(qTensor, "q", rows, heads, hd);
        HostKvCache kv = CpuKernels.hostCache(kvCache);
        float[] q = floats(qTensor);
        AttentionPartial partial;
        if (kv.length(layer) == 0) {
            partial = AttentionPartial.empty(rows, heads, hd);
        } else if (inJava(queryPositions, kv, layer)) {
            partial = CpuKernels.attend(config, q, queryPositions, kv, layer);
        } else {
            partial = attendNative(q, queryPositions, kv, layer);
        }
        return new Partial(host(arena, partial.output(), rows, heads, hd), host(arena, partial.lse(), rows, heads));
    }

    /** Whether these rows' attention runs in Java ({@link CpuKernels#attend}) rather than in libtorch. */
    private static boolean inJava(int[] queryPositions, HostKvCache kv, int layer) {
        int rows = queryPositions.length;
        return rows <= JAVA_ATTENTION_MAX_ROWS
                || rows <= JAVA_VISIBLE_ATTENTION_MAX_ROWS && CpuKernels.seesEveryKey(queryPositions, kv, layer);
    }

    /** The sets the Java kernel takes share one pass over the keys ({@link CpuKernels#attendEach}); others alone. */
    @Override
    public List<Partial> attendEach(Arena arena, List<Tensor> qs, List<int[]> positions, KvCache kvCache,
                                    int layer) {
        HostKvCache kv = CpuKernels.hostCache(kvCache);
        List<Integer> javaSets = new ArrayList<>();
        for (int set = 0; set < qs.size(); set++) {
            if (inJava(positions.get(set), kv, layer)) {
                javaSets.add(set);
            }
        }
        if (javaSets.size() < 2 || kv.length(layer) == 0) {
            return Backend.super.attendEach(arena, qs, positions, kvCache, layer);
        }
        List<float[]> stackedQ = new ArrayList<>();
        List<int[]> stackedPositions = new ArrayList<>();
        for (int set : javaSets) {
            Tensor.requireShape(qs.get(set), "q", positions.get(set).length, config.heads(), config.headDim());
            stackedQ.add(floats(qs.get(set)));
            stackedPositions.add(positions.get(set));
        }
        List<AttentionPartial> shared = CpuKernels.attendEach(config, stackedQ, stackedPositions, kv, layer);
        Partial[] partials = new Partial[qs.size()];
        for (int i = 0; i < javaSets.size(); i++) {
            AttentionPartial p = shared.get(i);
            partials[javaSets.get(i)] = new Partial(host(arena, p.output(), p.rows(), p.heads(), p.headDim()),
                    host(arena, p.lse(), p.rows(), p.heads()));
        }
        for (int set = 0; set < qs.size(); set++) {
            if (partials[set] == null) {
                partials[set] = attend(arena, qs.get(set), positions.get(set), kvCache, layer);
            }
        }
        return List.of(partials);
    }

    private AttentionPartial attendNative(float[] q, int[] queryPositions, HostKvCache kv, int layer) {
        int rows = queryPositions.length;
        int keyCount = kv.length(layer);
        int heads = config.heads();
        int hd = config.headDim();
        float[] output = new float[rows * heads * hd];
        float[] lse = new float[rows * heads];
        int chunk = (int) Math.max(1, Math.min(rows, MAX_SCORE_ELEMENTS / ((long) heads * keyCount)));
        try (NDManager scope = manager.newSubManager()) {
            int kvHeads = config.kvHeads();
            // [S, Hkv, hd] -> [Hkv, 1, hd, S] and [Hkv, 1, S, hd]: one leading batch per KV head, broadcast over G
            Shape kvShape = new Shape(keyCount, kvHeads, hd);
            NDArray kT = scope.create(kv.keysF32(layer), kvShape).transpose(1, 2, 0).expandDims(1);
            NDArray v = scope.create(kv.valuesF32(layer), kvShape).transpose(1, 0, 2).expandDims(1);
            NDArray keyPos = scope.create(IntBuffer.wrap(kv.positions(layer, 0, keyCount)), new Shape(1, keyCount),
                    DataType.INT32);
            for (int start = 0; start < rows; start += chunk) {
                int end = Math.min(rows, start + chunk);
                try (NDManager chunkScope = scope.newSubManager()) {
                    attendChunk(chunkScope, q, queryPositions, start, end, kT, v, keyPos, output, lse);
                }
            }
        }
        return new AttentionPartial(rows, heads, output, lse);
    }

    /** Rows [start, end) of the attention; writes output [T, H, hd] and lse [T, H] of those rows. */
    private void attendChunk(NDManager scope, float[] q, int[] queryPositions, int start, int end,
                             NDArray kT, NDArray v, NDArray keyPos, float[] output, float[] lse) {
        int rows = end - start;
        int heads = config.heads();
        int kvHeads = config.kvHeads();
        int group = config.groupSize();
        int hd = config.headDim();
        float[] qChunk = Arrays.copyOfRange(q, start * heads * hd, end * heads * hd);
        int[] posChunk = Arrays.copyOfRange(queryPositions, start, end);
        // [T, H, hd] -> [T, Hkv, G, hd] -> [Hkv, G, T, hd]: query head h reads KV head h / G
        NDArray query = scope.create(qChunk, new Shape(rows, kvHeads, group, hd)).transpose(1, 2, 0, 3);
        NDArray scores = query.matMul(kT).mul(1.0 / Math.sqrt(hd)); // [Hkv, G, T, S]
        if (!allKeysVisible(posChunk, keyPos)) {
            NDArray visible = keyPos.lte(scope.create(posChunk, new Shape(rows, 1))); // [T, S]
            Shape maskShape = visible.getShape();
            NDArray mask = NDArrays.where(visible, scope.zeros(maskShape),
                    scope.full(maskShape, Float.NEGATIVE_INFINITY));
            scores = scores.add(mask); // [T, S] broadcasts over [Hkv, G]
        }
        // softmax is one fused, max-subtracted kernel; the row's lse follows from its largest probability:
        // p_max = exp(max - lse), so lse = max - log(p_max) (p_max >= 1/S: no underflow). A row with no visible
        // key softmaxes to NaN; it is zeroed below with lse = -inf.
        NDArray max = scores.max(new int[] {-1}, true);
        NDArray probabilities = scores.softmax(-1);
        NDArray out = probabilities.matMul(v);                                          // [Hkv, G, T, hd]
        NDArray rowLse = max.sub(probabilities.max(new int[] {-1}, true).log()).squeeze(-1); // [Hkv, G, T]
        float[] outRows = out.transpose(2, 0, 1, 3).toFloatArray(); // [T, Hkv, G, hd] = [T, H, hd]
        float[] lseRows = rowLse.transpose(2, 0, 1).toFloatArray(); // [T, H]
        for (int rh = 0; rh < rows * heads; rh++) {
            if (!(lseRows[rh] > Float.NEGATIVE_INFINITY)) { // -inf or NaN: no visible key
                lseRows[rh] = Float.NEGATIVE_INFINITY;
                Arrays.fill(outRows, rh * hd, (rh + 1) * hd, 0f);
            }
        }
        System.arraycopy(outRows, 0, output, start * heads * hd, outRows.length);
        System.arraycopy(lseRows, 0, lse, start * heads, lseRows.length);
    }

    /** True when every key precedes every query row (remote context blocks): no mask needed. */
    private static boolean allKeysVisible(int[] queryPositions, NDArray keyPositions) {
        int minQuery = Integer.MAX_VALUE;
        for (int p : queryPositions) {
            minQuery = Math.min(minQuery, p);
        }
        return keyPositions.max().getInt() <= minQuery;
    }

    @Override
    public Partial merge(Arena arena, List<Partial> partials) {
        return CpuKernels.merge(partials, this::floats, (values, shape) -> host(arena, values, shape));
    }

    @Override
    public Tensor finishLayer(Arena arena, int layer, Tensor x, Tensor attention) {
        return finishLayerEach(arena, layer, List.of(x), List.of(attention)).get(0);
    }

    /** Sets of at most {@link #JAVA_DENSE_MAX_ROWS} rows stacked into one Java pass; larger sets in libtorch. */
    @Override
    public List<Tensor> finishLayerEach(Arena arena, int layer, List<Tensor> xs, List<Tensor> attentions) {
        Tensor[] out = new Tensor[xs.size()];
        List<Integer> small = new ArrayList<>();
        for (int set = 0; set < xs.size(); set++) {
            int rows = xs.get(set).dim(0);
            Tensor.requireShape(xs.get(set), "x", rows, config.dim());
            Tensor.requireShape(attentions.get(set), "attention", rows, config.heads(), config.headDim());
            if (rows <= JAVA_DENSE_MAX_ROWS) {
                small.add(set);
            } else {
                out[set] = finishLayerNative(arena, layer, xs.get(set), attentions.get(set));
            }
        }
        if (!small.isEmpty()) {
            DenseLayer w = dense.get(layer);
            int dim = config.dim();
            int hidden = config.hiddenDim();
            float[] x = stackRows(xs, small);
            int rows = x.length / dim;
            float[] attention = stackRows(attentions, small);
            float[] residual = FewRowDense.add(x, FewRowDense.multiply(attention, rows, config.queryWidth(), w.wo(),
                    dim));
            float[] normed = FewRowDense.rmsNorm(residual, rows, dim, w.ffnNorm(), (float) config.rmsNormEps());
            float[] gateUp = FewRowDense.multiply(normed, rows, dim, w.wGateUp(), 2 * hidden); // [rows, gate | up]
            float[] activated = FewRowDense.gatedSilu(columns(gateUp, rows, 2 * hidden, 0, hidden),
                    columns(gateUp, rows, 2 * hidden, hidden, hidden));                  // [rows, hidden]
            float[] next = FewRowDense.add(residual, FewRowDense.multiply(activated, rows, hidden, w.wDown(), dim));
            int[] rowsPerSet = rowsPerSet(xs, small);
            List<float[]> nexts = FewRowDense.unstack(next, rowsPerSet, dim);
            for (int i = 0; i < small.size(); i++) {
                out[small.get(i)] = host(arena, nexts.get(i), rowsPerSet[i], dim);
            }
        }
        return List.of(out);
    }

    private Tensor finishLayerNative(Arena arena, int layer, Tensor x, Tensor attention) {
        int rows = x.dim(0);
        NativeLayer w = layers.get(layer);
        try (NDManager scope = manager.newSubManager()) {
            NDArray residual = array(scope, x).add(scope.create(floats(attention),
                    new Shape(rows, config.queryWidth())).matMul(w.woT()));
            NDArray normed = rmsNorm(residual, w.ffnNorm());
            NDArray gate = normed.matMul(w.wGateT());
            NDArray up = normed.matMul(w.wUpT());
            NDArray activated = gate.mul(Activation.sigmoid(gate)).mul(up); // SiLU(gate) * up: [T, hidden]
            NDArray next = residual.add(activated.matMul(w.wDownT()));
            next.attach(manager); // outlives the scope: freed when its arena closes
            return arena.own(new DjlTensor(ledger, next));
        }
    }

    @Override
    public float[] logits(Tensor x) {
        return logitsEach(List.of(x)).get(0);
    }

    /** Sets of at most {@link #JAVA_DENSE_MAX_ROWS} rows stacked into one Java pass; larger sets in libtorch. */
    @Override
    public List<float[]> logitsEach(List<Tensor> xs) {
        float[][] out = new float[xs.size()][];
        List<Integer> small = new ArrayList<>();
        for (int set = 0; set < xs.size(); set++) {
            int rows = xs.get(set).dim(0);
            Tensor.requireShape(xs.get(set), "x", rows, config.dim());
            if (rows <= JAVA_DENSE_MAX_ROWS) {
                small.add(set);
            } else {
                try (NDManager scope = manager.newSubManager()) {
                    out[set] = rmsNorm(array(scope, xs.get(set)), finalNorm).matMul(outputHeadT).toFloatArray();
                }
            }
        }
        if (!small.isEmpty()) {
            int dim = config.dim();
            int vocab = config.vocabSize();
            float[] x = stackRows(xs, small);
            int rows = x.length / dim;
            float[] normed = FewRowDense.rmsNorm(x, rows, dim, finalNormDense, (float) config.rmsNormEps());
            List<float[]> logits = FewRowDense.unstack(FewRowDense.multiply(normed, rows, dim, outputHeadDense, vocab),
                    rowsPerSet(xs, small), vocab);
            for (int i = 0; i < small.size(); i++) {
                out[small.get(i)] = logits.get(i);
            }
        }
        return List.of(out);
    }

    /** The rows of the sets {@code chosen}, one after another, on the heap (read only: FewRowDense never writes). */
    private float[] stackRows(List<Tensor> tensors, List<Integer> chosen) {
        if (chosen.size() == 1) {
            return floats(tensors.get(chosen.get(0)));
        }
        return FewRowDense.stack(chosen.stream().map(set -> floats(tensors.get(set))).toList());
    }

    private static int[] rowsPerSet(List<Tensor> tensors, List<Integer> chosen) {
        return chosen.stream().mapToInt(set -> tensors.get(set).dim(0)).toArray();
    }

    /** Columns [from, from + count) of every row of a [rows, width] matrix: [rows, count]. */
    private static float[] columns(float[] matrix, int rows, int width, int from, int count) {
        float[] out = new float[rows * count];
        for (int r = 0; r < rows; r++) {
            System.arraycopy(matrix, r * width + from, out, r * count, count);
        }
        return out;
    }

    /** x [T, dim] -> x / sqrt(mean(x^2) + eps) * weight. */
    private NDArray rmsNorm(NDArray x, NDArray weight) {
        NDArray meanSquare = x.square().mean(new int[] {-1}, true);
        return x.div(meanSquare.add(config.rmsNormEps()).sqrt()).mul(weight);
    }

    /**
     * A tensor of this backend as a native array in {@code scope}: a {@link DjlTensor}'s own array, attached to the
     * scope until it closes (so that every result derived from it is a temporary of the scope too, and the array
     * itself goes back to the backend's manager), else a copy.
     */
    private NDArray array(NDManager scope, Tensor tensor) {
        if (tensor instanceof DjlTensor native_) {
            native_.checkUsableBy(ledger);
            native_.array().tempAttach(scope);
            return native_.array();
        }
        return scope.create(floats(tensor), new Shape(tensor.dim(0), tensor.dim(1)));
    }

    /** A tensor of this backend on the heap: the array itself for a {@link HostTensor}, a copy otherwise. */
    private float[] floats(Tensor tensor) {
        if (tensor instanceof HostTensor host) {
            host.checkUsableBy(ledger);
            return host.data();
        }
        if (tensor instanceof DjlTensor native_) {
            native_.checkUsableBy(ledger);
            return native_.array().toFloatArray();
        }
        throw new IllegalArgumentException(tensor + " is not a tensor of the DJL backend");
    }

    private HostTensor host(Arena arena, float[] values, int... shape) {
        return arena.own(new HostTensor(ledger, values, shape));
    }

    @Override
    public long liveHandles() {
        return ledger.open();
    }

    /** Native arrays alive under this backend (weights + anything an op forgot to close): for leak tests. */
    public int liveNativeArrays() {
        return manager.getManagedArrays().size();
    }

    @Override
    public void close() {
        manager.close();
    }
}
