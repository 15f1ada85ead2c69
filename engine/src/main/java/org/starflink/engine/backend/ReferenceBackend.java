package org.starflink.engine.backend;

import java.util.List;
import org.starflink.engine.model.LayerWeights;
import org.starflink.engine.model.ModelConfig;
import org.starflink.engine.model.ModelWeights;
import org.starflink.engine.model.WeightSource;

/**
 * The plain-Java reference: straight loops over float32 weights on the heap, every dot product and softmax sum
 * accumulated in float64, tensors in Java arrays ({@link HostTensor}). Slow and obviously right; every other
 * backend is compared against it.
 */
public final class ReferenceBackend implements Backend {
    private final ModelConfig config;
    private final ModelWeights weights;
    private final KvPrecision kvPrecision;
    private final Rope rope;
    private final HandleLedger ledger = new HandleLedger();

    public ReferenceBackend(ModelConfig config, WeightSource weights, KvPrecision kvPrecision) {
        this.config = config;
        this.weights = ModelWeights.read(weights, config);
        this.kvPrecision = kvPrecision;
        this.rope = new Rope(config);
    }

    @Override
    public String name() {
        return "reference";
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
        return host(arena, TokenEmbedding.lookup(weights.tokenEmbedding(), config.dim(), tokens), tokens.length,
                config.dim());
    }

    @Override
    public Tensor upload(Arena arena, float[] values, int... shape) {
        return host(arena, values.clone(), shape);
    }

    @Override
    public float[] download(Tensor tensor) {
        return data(tensor).clone();
    }

    @Override
    public Tensor rows(Arena arena, Tensor x, int from, int to) {
        int width = x.dim(1);
        return host(arena, java.util.Arrays.copyOfRange(data(x), from * width, to * width), to - from, width);
    }

    @Override
    public Qkv projectQkv(Arena arena, int layer, Tensor xTensor, int[] positions) {
        int rows = positions.length;
        Tensor.requireShape(xTensor, "x", rows, config.dim());
        LayerWeights w = weights.layers().get(layer);
        float[] normed = rmsNorm(data(xTensor), rows, w.attentionNorm());
        float[] q = matmul(normed, rows, config.dim(), w.wq(), config.queryWidth(), w.bq());
        float[] k = matmul(normed, rows, config.dim(), w.wk(), config.kvWidth(), w.bk());
        float[] v = matmul(normed, rows, config.dim(), w.wv(), config.kvWidth(), w.bv());
        rope.apply(q, config.heads(), positions);
        rope.apply(k, config.kvHeads(), positions);
        int hd = config.headDim();
        return new Qkv(host(arena, q, rows, config.heads(), hd), host(arena, k, rows, config.kvHeads(), hd),
                host(arena, v, rows, config.kvHeads(), hd));
    }

    @Override
    public KvCache newKvCache(int expectedTokens) {
        return new HostKvCache(config.layers(), config.kvWidth(), config.headDim(), kvPrecision, expectedTokens,
                ledger, this::data);
    }

    @Override
    public Partial attend(Arena arena, Tensor qTensor, int[] queryPositions, KvCache kvCache, int layer) {
        int rows = queryPositions.length;
        int heads = config.heads();
        int kvHeads = config.kvHeads();
        int group = config.groupSize();
        int hd = config.headDim();
        Tensor.requireShape(qTensor, "q", rows, heads, hd);
        float[] q = data(qTensor);
        HostKvCache kv = CpuKernels.hostCache(kvCache);
        int keyCount = kv.length(layer);
        int[] keyPositions = kv.positionsView(layer);
        double scale = 1.0 / Math.sqrt(hd);
        float[] output = new float[rows * heads * hd];
        float[] lse = new float[rows * heads];
        CpuKernels.Scratch scratch = CpuKernels.Scratch.get(keyCount, hd);
        float[] keys = scratch.keys;
        float[] values = scratch.values;
        double[] scores = scratch.scoresF64;
        double[] acc = new double[hd];
        for (int kvHead = 0; kvHead < kvHeads; kvHead++) {
            // The group's query heads h = kvHead * G + g all read KV head kvHead: widen its keys and values once.
            kv.keyHead(layer, kvHead, keys);
            kv.valueHead(layer, kvHead, values);
            for (int t = 0; t < rows; t++) {
                for (int h = kvHead * group; h < (kvHead + 1) * group; h++) {
                    int qBase = (t * heads + h) * hd;
                    double max = Double.NEGATIVE_INFINITY;
                    for (int s = 0; s < keyCount; s++) {
                        if (keyPositions[s] > queryPositions[t]) {
                            scores[s] = Double.NEGATIVE_INFINITY;
                            continue;
                        }
                        int kBase = s * hd;
                        double dot = 0;
                        for (int i = 0; i < hd; i++) {
                            dot += (double) q[qBase + i] * keys[kBase + i];
                        }
                        scores[s] = dot * scale;
                        max = Math.max(max, scores[s]);
                    }
                    if (max == Double.NEGATIVE_INFINITY) {
                        lse[t * heads + h] = Float.NEGATIVE_INFINITY; // no visible key: zero output
                        continue;
                    }
                    double sum = 0;
                    java.util.Arrays.fill(acc, 0);
                    for (int s = 0; s < keyCount; s++) {
                        if (keyPositions[s] > queryPositions[t]) {
                            continue;
                        }
                        double p = Math.exp(scores[s] - max);
                        sum += p;
                        int vBase = s * hd;
                        for (int i = 0; i < hd; i++) {
                            acc[i] += p * values[vBase + i];
                        }
                    }
                    for (int i = 0; i < hd; i++) {
                        output[qBase + i] = (float) (acc[i] / sum);
                    }
                    lse[t * heads + h] = (float) (max + Math.log(sum));
                }
            }
        }
        return new Partial(host(arena, output, rows, heads, hd), host(arena, lse, rows, heads));
    }

    @Override
    public Partial merge(Arena arena, List<Partial> partials) {
        return CpuKernels.merge(partials, this::data, (values, shape) -> host(arena, values, shape));
    }

    @Override
    public Tensor finishLayer(Arena arena, int layer, Tensor xTensor, Tensor attentionTensor) {
        int dim = config.dim();
        int rows = xTensor.dim(0);
        Tensor.requireShape(xTensor, "x", rows, dim);
        Tensor.requireShape(attentionTensor, "attention", rows, config.heads(), config.headDim());
        LayerWeights w = weights.layers().get(layer);
        float[] x = data(xTensor);
        float[] projected = matmul(data(attentionTensor), rows, config.queryWidth(), w.wo(), dim, null);
        float[] h = new float[x.length];
        for (int i = 0; i < h.length; i++) {
            h[i] = x[i] + projected[i];
        }
        float[] normed = rmsNorm(h, rows, w.ffnNorm());
        float[] gate = matmul(normed, rows, dim, w.wGate(), config.hiddenDim(), null);
        float[] up = matmul(normed, rows, dim, w.wUp(), config.hiddenDim(), null);
        for (int i = 0; i < gate.length; i++) {
            double g = gate[i];
            gate[i] = (float) (g / (1 + Math.exp(-g)) * up[i]); // SiLU(gate) * up
        }
        float[] down = matmul(gate, rows, config.hiddenDim(), w.wDown(), dim, null);
        for (int i = 0; i < h.length; i++) {
            h[i] += down[i];
        }
        return host(arena, h, rows, dim);
    }

    @Override
    public float[] logits(Tensor xTensor) {
        int rows = xTensor.dim(0);
        Tensor.requireShape(xTensor, "x", rows, config.dim());
        float[] normed = rmsNorm(data(xTensor), rows, weights.finalNorm());
        return matmul(normed, rows, config.dim(), weights.outputHead(), config.vocabSize(), null);
    }

    @Override
    public long liveHandles() {
        return ledger.open();
    }

    private HostTensor host(Arena arena, float[] values, int... shape) {
        return arena.own(new HostTensor(ledger, values, shape));
    }

    private float[] data(Tensor tensor) {
        if (!(tensor instanceof HostTensor host)) {
            throw new IllegalArgumentException(tensor + " is not a tensor of the reference backend");
        }
        host.checkUsableBy(ledger);
        return host.data();
    }

    /** x: [rows, dim] -> x / rms(x) * weight, per row. */
    private float[] rmsNorm(float[] x, int rows, float[] weight) {
        int dim = config.dim();
        float[] out = new float[x.length];
        for (int r = 0; r < rows; r++) {
            double sumSquares = 0;
            for (int i = 0; i < dim; i++) {
                sumSquares += (double) x[r * dim + i] * x[r * dim + i];
            }
            double inverseRms = 1.0 / Math.sqrt(sumSquares / dim + config.rmsNormEps());
            for (int i = 0; i < dim; i++) {
                out[r * dim + i] = (float) (x[r * dim + i] * inverseRms * weight[i]);
            }
        }
        return out;
    }

    /** x: [rows, in], w: [out, in], bias: [out] or null -> [rows, out]. */
    private static float[] matmul(float[] x, int rows, int in, float[] w, int out, float[] bias) {
        float[] y = new float[rows * out];
        for (int r = 0; r < rows; r++) {
            for (int o = 0; o < out; o++) {
                double dot = bias == null ? 0 : bias[o];
                int xBase = r * in;
                int wBase = o * in;
                for (int i = 0; i < in; i++) {
                    dot += (double) x[xBase + i] * w[wBase + i];
                }
                y[r * out + o] = (float) dot;
            }
        }
        return y;
    }
}
