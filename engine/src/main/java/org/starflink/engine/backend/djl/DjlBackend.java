package org.starflink.engine.backend.djl;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import ai.djl.nn.Activation;
import java.util.ArrayList;
import java.util.List;
import org.starflink.engine.DjlOffline;
import org.starflink.engine.EngineException;
import org.starflink.engine.attention.AttentionPartial;
import org.starflink.engine.backend.Backend;
import org.starflink.engine.backend.JavaAttention;
import org.starflink.engine.backend.TokenEmbedding;
import org.starflink.engine.backend.QkvProjection;
import org.starflink.engine.forward.KvSpan;
import org.starflink.engine.forward.Rope;
import org.starflink.engine.model.LayerWeights;
import org.starflink.engine.model.ModelConfig;
import org.starflink.engine.model.ModelWeights;

/**
 * The CPU backend on PyTorch (libtorch 2.7.1) through DJL. Weights are copied into native tensors once; every
 * call opens a sub-manager for its temporaries and closes it before returning, so native memory does not grow
 * with the number of calls. RoPE and the token-embedding lookup stay in Java: both are O(T * width), noise next
 * to the matrix products, and sharing them with the reference removes a source of disagreement.
 *
 * <p>DJL runs offline ({@link DjlOffline}); libtorch is extracted once under DJL_CACHE_DIR.
 */
public final class DjlBackend implements Backend {
    /** Attention scores are materialized per chunk of query rows; this caps one chunk's score tensor. */
    private static final long MAX_SCORE_ELEMENTS = 4L << 20;
    /**
     * Up to this many query rows, attention runs in Java over the keys in place: copying S keys into libtorch
     * costs more than one pass over them (measured on stories260K: 1.1 ms per call through DJL at S = 300).
     */
    private static final int JAVA_ATTENTION_MAX_ROWS = 4;

    private final ModelConfig config;
    private final float[] tokenEmbedding;
    private final Rope rope;
    private final NDManager manager;
    private final List<NativeLayer> layers = new ArrayList<>();
    private final NDArray finalNorm;
    /** [dim, vocab]: a transposed view of the [vocab, dim] head. */
    private final NDArray outputHeadT;

    /** One layer's weights as native tensors; projections are transposed views [in, out] of the HF [out, in]. */
    private record NativeLayer(NDArray attentionNorm, NDArray wqT, NDArray wkT, NDArray wvT,
                               NDArray bq, NDArray bk, NDArray bv, NDArray woT, NDArray ffnNorm,
                               NDArray wGateT, NDArray wUpT, NDArray wDownT) {
    }

    public DjlBackend(ModelConfig config, ModelWeights weights) {
        DjlOffline.ensure();
        this.config = config;
        this.tokenEmbedding = weights.tokenEmbedding();
        this.rope = new Rope(config);
        try {
            this.manager = NDManager.newBaseManager(Device.cpu(), Engine.getEngine("PyTorch").getEngineName());
        } catch (RuntimeException | UnsatisfiedLinkError e) {
            throw new EngineException("cannot start the PyTorch engine (DJL): " + e.getMessage(), e);
        }
        int dim = config.dim();
        for (LayerWeights w : weights.layers()) {
            layers.add(new NativeLayer(
                    vector(w.attentionNorm()),
                    transposed(w.wq(), config.queryWidth(), dim),
                    transposed(w.wk(), config.kvWidth(), dim),
                    transposed(w.wv(), config.kvWidth(), dim),
                    w.bq() == null ? null : vector(w.bq()),
                    w.bk() == null ? null : vector(w.bk()),
                    w.bv() == null ? null : vector(w.bv()),
                    transposed(w.wo(), dim, config.queryWidth()),
                    vector(w.ffnNorm()),
                    transposed(w.wGate(), config.hiddenDim(), dim),
                    transposed(w.wUp(), config.hiddenDim(), dim),
                    transposed(w.wDown(), dim, config.hiddenDim())));
        }
        this.finalNorm = vector(weights.finalNorm());
        this.outputHeadT = transposed(weights.outputHead(), config.vocabSize(), dim);
    }

    private NDArray vector(float[] values) {
        return manager.create(values, new Shape(values.length));
    }

    /** w: [out, in] -> a transposed view [in, out], so that x [T, in] . view = x W^T. */
    private NDArray transposed(float[] w, int out, int in) {
        return manager.create(w, new Shape(out, in)).transpose();
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
    public float[] embed(int[] tokens) {
        return TokenEmbedding.lookup(tokenEmbedding, config.dim(), tokens);
    }

    @Override
    public QkvProjection projectQkv(int layer, float[] x, int[] positions) {
        NativeLayer w = layers.get(layer);
        int rows = positions.length;
        float[] q;
        float[] k;
        float[] v;
        try (NDManager scope = manager.newSubManager()) {
            NDArray normed = rmsNorm(scope.create(x, new Shape(rows, config.dim())), w.attentionNorm());
            q = withBias(normed.matMul(w.wqT()), w.bq()).toFloatArray();
            k = withBias(normed.matMul(w.wkT()), w.bk()).toFloatArray();
            v = withBias(normed.matMul(w.wvT()), w.bv()).toFloatArray();
        }
        rope.apply(q, config.heads(), positions);
        rope.apply(k, config.kvHeads(), positions);
        return new QkvProjection(q, k, v);
    }

    private static NDArray withBias(NDArray y, NDArray bias) {
        return bias == null ? y : y.add(bias);
    }

    @Override
    public AttentionPartial attend(float[] q, int[] queryPositions, KvSpan kv) {
        int rows = queryPositions.length;
        int keyCount = kv.length();
        int heads = config.heads();
        int hd = config.headDim();
        if (keyCount == 0) {
            return AttentionPartial.empty(rows, heads, hd);
        }
        if (rows <= JAVA_ATTENTION_MAX_ROWS) {
            return JavaAttention.attend(config, q, queryPositions, kv);
        }
        float[] output = new float[rows * heads * hd];
        float[] lse = new float[rows * heads];
        int chunk = (int) Math.max(1, Math.min(rows, MAX_SCORE_ELEMENTS / ((long) heads * keyCount)));
        try (NDManager scope = manager.newSubManager()) {
            int kvHeads = config.kvHeads();
            // [S, Hkv, hd] -> [Hkv, 1, hd, S] and [Hkv, 1, S, hd]: one leading batch per KV head, broadcast over G
            Shape kvShape = new Shape(keyCount, kvHeads, hd);
            int kvFloats = keyCount * kvHeads * hd;
            NDArray kT = scope.create(FloatBuffer.wrap(kv.keys(), 0, kvFloats), kvShape, DataType.FLOAT32)
                    .transpose(1, 2, 0).expandDims(1);
            NDArray v = scope.create(FloatBuffer.wrap(kv.values(), 0, kvFloats), kvShape, DataType.FLOAT32)
                    .transpose(1, 0, 2).expandDims(1);
            NDArray keyPos = scope.create(IntBuffer.wrap(kv.positions(), 0, keyCount), new Shape(1, keyCount),
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
        float[] qChunk = java.util.Arrays.copyOfRange(q, start * heads * hd, end * heads * hd);
        int[] posChunk = java.util.Arrays.copyOfRange(queryPositions, start, end);
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
                java.util.Arrays.fill(outRows, rh * hd, (rh + 1) * hd, 0f);
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
    public float[] finishLayer(int layer, float[] x, float[] attention) {
        NativeLayer w = layers.get(layer);
        int rows = x.length / config.dim();
        try (NDManager scope = manager.newSubManager()) {
            NDArray residual = scope.create(x, new Shape(rows, config.dim()))
                    .add(scope.create(attention, new Shape(rows, config.queryWidth())).matMul(w.woT()));
            NDArray normed = rmsNorm(residual, w.ffnNorm());
            NDArray gate = normed.matMul(w.wGateT());
            NDArray up = normed.matMul(w.wUpT());
            NDArray activated = gate.mul(Activation.sigmoid(gate)).mul(up); // SiLU(gate) * up: [T, hidden]
            return residual.add(activated.matMul(w.wDownT())).toFloatArray();
        }
    }

    @Override
    public float[] logits(float[] x) {
        int rows = x.length / config.dim();
        try (NDManager scope = manager.newSubManager()) {
            return rmsNorm(scope.create(x, new Shape(rows, config.dim())), finalNorm).matMul(outputHeadT)
                    .toFloatArray();
        }
    }

    /** x [T, dim] -> x / sqrt(mean(x^2) + eps) * weight. */
    private NDArray rmsNorm(NDArray x, NDArray weight) {
        NDArray meanSquare = x.square().mean(new int[] {-1}, true);
        return x.div(meanSquare.add(config.rmsNormEps()).sqrt()).mul(weight);
    }

    /** Native arrays alive under this backend (weights + anything a call forgot to close): for leak tests. */
    public int liveNativeArrays() {
        return manager.getManagedArrays().size();
    }

    @Override
    public void close() {
        manager.close();
    }
}
