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
 * The CPU backend on PyTorch (libtorch 2.7.1) through DJL. Weights are read from the checkpoint one tensor at a
 * time into native float32 tensors (DJL cannot hold BF16: any BF16 tensor kills the JVM), so the heap never holds
 * more than one of them. The residual stream stays native between layers ({@link DjlTensor}); q/k/v come back to
 * the heap because RoPE, the KV cache and the few-row attention run in Java ({@link HostTensor}, {@link
 * HostKvCache}): those are O(T * width), noise next to the matrix products, and sharing them with the reference
 * removes a source of disagreement. Every op opens a sub-manager for its temporaries and closes it before
 * returning; results that outlive the op are attached to the backend's manager and freed by their arena.
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
     * Java too, in {@link CpuKernels}'s stacked loop nest: measured on the project's model over 1024 keys, 0.6 ms
     * against libtorch's 1.8 ms at 5 rows, 1.6 against 1.7 at 16, 3.0 against 2.1 at 32.
     */
    private static final int JAVA_VISIBLE_ATTENTION_MAX_ROWS = 16;

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

    public DjlBackend(ModelConfig config, WeightSource weights, KvPrecision kvPrecision) {
        DjlOffline.ensure();
        LibtorchThreads.ensure();
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
            layers.add(new NativeLayer(
                    vector(weights, Kind.ATTENTION_NORM, l),
                    transposed(weights, Kind.WQ, l), transposed(weights, Kind.WK, l), transposed(weights, Kind.WV, l),
                    bias ? vector(weights, Kind.BQ, l) : null,
                    bias ? vector(weights, Kind.BK, l) : null,
                    bias ? vector(weights, Kind.BV, l) : null,
                    transposed(weights, Kind.WO, l),
                    vector(weights, Kind.FFN_NORM, l),
                    transposed(weights, Kind.W_GATE, l), transposed(weights, Kind.W_UP, l),
                    transposed(weights, Kind.W_DOWN, l)));
        }
        this.finalNorm = vector(weights, Kind.FINAL_NORM, -1);
        WeightName head = WeightName.of(Kind.OUTPUT_HEAD);
        float[] headValues = config.tiedEmbeddings() ? tokenEmbedding : weights.read(head);
        this.outputHeadT = manager.create(headValues, new Shape(config.vocabSize(), config.dim())).transpose();
    }

    private NDArray vector(WeightSource weights, Kind kind, int layer) {
        float[] values = weights.read(new WeightName(kind, layer));
        return manager.create(values, new Shape(values.length));
    }

    /** w: [out, in] -> a transposed view [in, out], so that x [T, in] . view = x W^T. */
    private NDArray transposed(WeightSource weights, Kind kind, int layer) {
        WeightName name = WeightName.of(kind, layer);
        int[] shape = name.shape(config);
        return manager.create(weights.read(name), new Shape(shape[0], shape[1])).transpose();
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
        int rows = positions.length;
        Tensor.requireShape(x, "x", rows, config.dim());
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
        int rows = x.dim(0);
        Tensor.requireShape(x, "x", rows, config.dim());
        Tensor.requireShape(attention, "attention", rows, config.heads(), config.headDim());
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
        int rows = x.dim(0);
        Tensor.requireShape(x, "x", rows, config.dim());
        try (NDManager scope = manager.newSubManager()) {
            return rmsNorm(array(scope, x), finalNorm).matMul(outputHeadT).toFloatArray();
        }
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
