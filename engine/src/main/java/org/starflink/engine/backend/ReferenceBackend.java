package org.starflink.engine.backend;

import org.starflink.engine.attention.AttentionPartial;
import org.starflink.engine.forward.KvSpan;
import org.starflink.engine.forward.Rope;
import org.starflink.engine.model.LayerWeights;
import org.starflink.engine.model.ModelConfig;
import org.starflink.engine.model.ModelWeights;

/**
 * The plain-Java reference: straight loops over the weights, every dot product and softmax sum accumulated in
 * float64. Slow and obviously right; every other backend is compared against it.
 */
public final class ReferenceBackend implements Backend {
    private final ModelConfig config;
    private final ModelWeights weights;
    private final Rope rope;

    public ReferenceBackend(ModelConfig config, ModelWeights weights) {
        this.config = config;
        this.weights = weights;
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
    public float[] embed(int[] tokens) {
        return TokenEmbedding.lookup(weights.tokenEmbedding(), config.dim(), tokens);
    }

    @Override
    public QkvProjection projectQkv(int layer, float[] x, int[] positions) {
        LayerWeights w = weights.layers().get(layer);
        int rows = positions.length;
        float[] normed = rmsNorm(x, rows, w.attentionNorm());
        float[] q = matmul(normed, rows, config.dim(), w.wq(), config.queryWidth(), w.bq());
        float[] k = matmul(normed, rows, config.dim(), w.wk(), config.kvWidth(), w.bk());
        float[] v = matmul(normed, rows, config.dim(), w.wv(), config.kvWidth(), w.bv());
        rope.apply(q, config.heads(), positions);
        rope.apply(k, config.kvHeads(), positions);
        return new QkvProjection(q, k, v);
    }

    @Override
    public AttentionPartial attend(float[] q, int[] queryPositions, KvSpan kv) {
        int rows = queryPositions.length;
        int keyCount = kv.length();
        int[] keyPositions = kv.positions();
        float[] keys = kv.keys();
        float[] values = kv.values();
        int heads = config.heads();
        int kvHeads = config.kvHeads();
        int hd = config.headDim();
        double scale = 1.0 / Math.sqrt(hd);
        float[] output = new float[rows * heads * hd];
        float[] lse = new float[rows * heads];
        double[] scores = new double[keyCount];
        double[] acc = new double[hd];
        for (int t = 0; t < rows; t++) {
            for (int h = 0; h < heads; h++) {
                int kvHead = h / config.groupSize();
                int qBase = (t * heads + h) * hd;
                double max = Double.NEGATIVE_INFINITY;
                for (int s = 0; s < keyCount; s++) {
                    if (keyPositions[s] > queryPositions[t]) {
                        scores[s] = Double.NEGATIVE_INFINITY;
                        continue;
                    }
                    int kBase = (s * kvHeads + kvHead) * hd;
                    double dot = 0;
                    for (int i = 0; i < hd; i++) {
                        dot += (double) q[qBase + i] * keys[kBase + i];
                    }
                    scores[s] = dot * scale;
                    max = Math.max(max, scores[s]);
                }
                if (max == Double.NEGATIVE_INFINITY) {
                    lse[t * heads + h] = Float.NEGATIVE_INFINITY;
                    continue;
                }
                double sum = 0;
                java.util.Arrays.fill(acc, 0);
                for (int s = 0; s < keyCount; s++) {
                    if (scores[s] == Double.NEGATIVE_INFINITY) {
                        continue;
                    }
                    double p = Math.exp(scores[s] - max);
                    sum += p;
                    int vBase = (s * kvHeads + kvHead) * hd;
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
        return new AttentionPartial(rows, heads, output, lse);
    }

    @Override
    public float[] finishLayer(int layer, float[] x, float[] attention) {
        LayerWeights w = weights.layers().get(layer);
        int dim = config.dim();
        int rows = x.length / dim;
        float[] projected = matmul(attention, rows, config.queryWidth(), w.wo(), dim, null);
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
        return h;
    }

    @Override
    public float[] logits(float[] x) {
        int rows = x.length / config.dim();
        float[] normed = rmsNorm(x, rows, weights.finalNorm());
        return matmul(normed, rows, config.dim(), weights.outputHead(), config.vocabSize(), null);
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
