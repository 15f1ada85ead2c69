package org.starflink.engine.backend;

import org.starflink.engine.attention.AttentionPartial;
import org.starflink.engine.forward.KvSpan;
import org.starflink.engine.model.ModelConfig;

/**
 * The tensor operations of one Llama decoder, split at the points where Star Attention needs to step in: the
 * attention of a layer is computed separately ({@link #attend}) so that its partials can come from other
 * workers and be merged before the layer finishes. Everything crosses this interface as row-major float32
 * arrays; a backend keeps its weights in whatever form suits it.
 *
 * <p>Implementations: {@link ReferenceBackend} (plain Java, float64 accumulation; the reference in tests) and
 * {@code DjlBackend} (PyTorch through DJL; the fast CPU path). A GPU backend implements the same interface.
 * All methods are thread-safe.
 */
public interface Backend extends AutoCloseable {

    String name();

    ModelConfig config();

    /** Token embeddings: [T, dim]. */
    float[] embed(int[] tokens);

    /**
     * The first half of a layer: RMSNorm, q/k/v projections (+ biases), RoPE at {@code positions}.
     *
     * @param x [T, dim] the residual stream entering the layer, T = positions.length
     */
    QkvProjection projectQkv(int layer, float[] x, int[] positions);

    /**
     * Scaled dot-product attention of T query rows over S keys, returning output and log-sum-exp. Key j is
     * visible to row i iff {@code kv.positions()[j] <= queryPositions[i]}: causal by position, which is exactly
     * the mask of every Star Attention case (phase 1 [anchor; block], the query host's own tokens, and remote
     * context blocks, whose positions all precede the question's).
     *
     * @param q  [T, H, headDim]
     * @param kv S keys and values, [S, Hkv, headDim] each, with their positions
     */
    AttentionPartial attend(float[] q, int[] queryPositions, KvSpan kv);

    /**
     * The second half of a layer: x + Wo * attention, then + SwiGLU(RMSNorm(.)).
     *
     * @param x         [T, dim] the residual stream that entered the layer
     * @param attention [T, H * headDim] the merged attention output
     * @return [T, dim]
     */
    float[] finishLayer(int layer, float[] x, float[] attention);

    /** Final RMSNorm and output head: [T, dim] -> [T, vocab]. */
    float[] logits(float[] x);

    @Override
    default void close() {
    }
}
