package org.starflink.engine.backend;

import java.util.ArrayList;
import java.util.List;
import org.starflink.engine.attention.AttentionPartial;
import org.starflink.engine.model.ModelConfig;

/**
 * The tensor operations of one Llama decoder, over tensors the backend owns ({@link Tensor}, {@link KvCache}).
 * A layer is split where Star Attention steps in: {@link #projectQkv}, then {@link #attend} over any number of
 * KV caches (local or remote) merged by {@link #merge}, then {@link #finishLayer}; {@code forward.LayerStep}
 * composes them, and every mode (global decoding, phase 1, phase 2 at a block and at the query host) is that one
 * step.
 *
 * <p>Host arrays cross this interface only where data must leave the backend: token ids in ({@link #embed}),
 * logits out ({@link #logits}), and through {@link #upload} / {@link #download} the phase-2 query rows and the
 * partials on the wire; KV pages for keyed state cross through {@link KvCache#read} / {@link KvCache#write}.
 * Everything else stays where the backend keeps it (device memory for a GPU).
 *
 * <p>Lifetimes: every op registers its result tensors in the {@link Arena} passed to it; closing the arena frees
 * them. Temporaries inside an op are freed before it returns. Shapes are checked at this boundary: a tensor of
 * the wrong shape, a closed one, or one of another backend is an IllegalArgumentException /
 * IllegalStateException. Weights are loaded once, when the backend is created, in the form it computes with.
 *
 * <p>Implementations: {@link ReferenceBackend} (plain Java, float64 accumulation; the reference in tests) and
 * {@code DjlBackend} (PyTorch on the CPU through DJL); a GPU backend implements the same interface. All methods
 * are thread-safe; arenas and KV caches have one owner each.
 */
public interface Backend extends AutoCloseable {

    String name();

    ModelConfig config();

    /** How this backend's KV caches store keys and values. */
    KvPrecision kvPrecision();

    /** Token embeddings: [T, dim]. */
    Tensor embed(Arena arena, int[] tokens);

    /** A tensor of the given shape holding {@code values} (row-major): query rows or partials from the wire. */
    Tensor upload(Arena arena, float[] values, int... shape);

    /** The tensor's values on the host, row-major (a new array). */
    float[] download(Tensor tensor);

    /** Rows [from, to) of a [T, width] tensor: [to - from, width]. */
    Tensor rows(Arena arena, Tensor x, int from, int to);

    /**
     * The first half of a layer: RMSNorm, q/k/v projections (+ biases), RoPE at {@code positions}.
     *
     * @param x [T, dim] the residual stream entering the layer, T = positions.length
     */
    Qkv projectQkv(Arena arena, int layer, Tensor x, int[] positions);

    /** An empty KV cache of this backend, with room for about {@code expectedTokens} before it grows. */
    KvCache newKvCache(int expectedTokens);

    /**
     * Scaled dot-product attention of T query rows over one layer of a KV cache, returning output and
     * log-sum-exp. Key j is visible to row i iff {@code position(k_j) <= queryPositions[i]}: causal by position,
     * which is exactly the mask of every Star Attention case (phase 1 [anchor; block], the query host's own
     * tokens, and remote context blocks, whose positions all precede the question's). A row with no visible key
     * has output 0 and lse -inf.
     *
     * @param q [T, H, headDim]
     */
    Partial attend(Arena arena, Tensor q, int[] queryPositions, KvCache cache, int layer);

    /**
     * {@link #attend} of several independent sets of query rows over one layer of one cache (the questions of a
     * query host's batch at one block): element i is bit for bit {@code attend(arena, qs.get(i),
     * positions.get(i), cache, layer)}, so that a question's numbers never depend on which others shared its batch.
     * This default attends set by set; a backend may share its pass over the keys between the sets as long as that
     * holds (the CPU backend stacks the sets that its few-row kernel takes).
     *
     * @param qs per set [T_i, H, headDim]
     */
    default List<Partial> attendEach(Arena arena, List<Tensor> qs, List<int[]> positions, KvCache cache,
                                     int layer) {
        List<Partial> partials = new ArrayList<>(qs.size());
        for (int set = 0; set < qs.size(); set++) {
            partials.add(attend(arena, qs.get(set), positions.get(set), cache, layer));
        }
        return partials;
    }

    /**
     * {@link #attend} over the union of two caches' keys of one layer, as if they were one cache: the rows' partial
     * over [first; second] (Star phase 1 over [anchor; block]). The result equals {@link #merge} of the two
     * {@code attend} partials in the order first, second; this default computes exactly that, and a backend may do
     * it in one pass instead (the GPU backend's kernel takes both key sets in one launch).
     */
    default Partial attendBoth(Arena arena, Tensor q, int[] queryPositions, KvCache first, KvCache second, int layer) {
        return merge(arena, List.of(attend(arena, q, queryPositions, first, layer),
                attend(arena, q, queryPositions, second, layer)));
    }

    /**
     * The exact log-sum-exp merge of partials of the same rows over disjoint key sets, in the given order (the
     * order fixes the last bits; callers that must be reproducible pass a canonical order). A partial with
     * lse = -inf weighs 0. The list must not be empty.
     */
    Partial merge(Arena arena, List<Partial> partials);

    /**
     * The second half of a layer: x + Wo * attention, then + SwiGLU(RMSNorm(.)).
     *
     * @param x         [T, dim] the residual stream that entered the layer
     * @param attention [T, H, headDim] the merged attention output
     * @return [T, dim]
     */
    Tensor finishLayer(Arena arena, int layer, Tensor x, Tensor attention);

    /** Final RMSNorm and output head: [T, dim] -> logits [T, vocab] on the host. */
    float[] logits(Tensor x);

    /*
     * The three ops above for several independent sets of rows at once (the members of a query host's batch, each at
     * the same layer): element i is bit for bit the single call on set i, so that a question's numbers never depend
     * on which others shared its batch. These defaults call set by set; a backend may share its pass over the
     * weights between the sets as long as that holds (the DJL backend stacks the sets its Java path takes).
     */

    /** {@link #projectQkv} of each set: element i is {@code projectQkv(arena, layer, xs.get(i), positions.get(i))}. */
    default List<Qkv> projectQkvEach(Arena arena, int layer, List<Tensor> xs, List<int[]> positions) {
        List<Qkv> out = new ArrayList<>(xs.size());
        for (int set = 0; set < xs.size(); set++) {
            out.add(projectQkv(arena, layer, xs.get(set), positions.get(set)));
        }
        return out;
    }

    /** {@link #finishLayer} of each set: element i is {@code finishLayer(arena, layer, xs.get(i), attentions(i))}. */
    default List<Tensor> finishLayerEach(Arena arena, int layer, List<Tensor> xs, List<Tensor> attentions) {
        List<Tensor> out = new ArrayList<>(xs.size());
        for (int set = 0; set < xs.size(); set++) {
            out.add(finishLayer(arena, layer, xs.get(set), attentions.get(set)));
        }
        return out;
    }

    /** {@link #logits} of each set: element i is {@code logits(xs.get(i))}. */
    default List<float[]> logitsEach(List<Tensor> xs) {
        List<float[]> out = new ArrayList<>(xs.size());
        for (Tensor x : xs) {
            out.add(logits(x));
        }
        return out;
    }

    /** Open tensors and KV caches of this backend: a number that grows only if a handle leaks. */
    long liveHandles();

    /** A partial brought to the host (for the wire). */
    default AttentionPartial download(Partial partial) {
        int rows = partial.lse().dim(0);
        int heads = partial.lse().dim(1);
        return new AttentionPartial(rows, heads, download(partial.output()), download(partial.lse()));
    }

    /** A partial from the wire, as tensors of this backend. */
    default Partial upload(Arena arena, AttentionPartial partial) {
        int headDim = partial.headDim();
        return new Partial(upload(arena, partial.output(), partial.rows(), partial.heads(), headDim),
                upload(arena, partial.lse(), partial.rows(), partial.heads()));
    }

    @Override
    default void close() {
    }
}
