package org.starflink.engine.forward;

import java.util.ArrayList;
import java.util.List;
import org.starflink.engine.backend.Arena;
import org.starflink.engine.backend.Backend;
import org.starflink.engine.backend.KvCache;
import org.starflink.engine.backend.Tensor;

/**
 * The decoder's forward pass over a backend: every layer is one {@link LayerStep} with all attention local.
 * <pre>
 *   x = embed(tokens)                                                 [T, dim]
 *   per layer: q = step.begin(x, own); x = step.end(x, q, context + [own], no remote)
 *   logits of the last row
 * </pre>
 * Global prefill is {@code context = []}; Star phase 1 for block i is {@code context = [anchor KV]}, own = the
 * block's cache. The query host runs the same step with remote partials ({@code star.QueryHost}).
 */
public final class Transformer {
    private final Backend backend;
    private final LayerStep step;

    public Transformer(Backend backend) {
        this.backend = backend;
        this.step = new LayerStep(backend);
    }

    public Backend backend() {
        return backend;
    }

    public LayerStep step() {
        return step;
    }

    /**
     * Runs T tokens through every layer, appending their KV to {@code own}.
     *
     * @param context    caches the tokens also attend to (keys visible by position); may be empty
     * @param wantLogits whether to compute the last row's logits (phase 1 does not need them)
     * @return the last row's logits [vocab], or null
     */
    public float[] forward(int[] tokens, int[] positions, List<KvCache> context, KvCache own, boolean wantLogits) {
        try (Arena pass = new Arena()) {
            Tensor x = hidden(pass, tokens, positions, context, own);
            return wantLogits ? lastRowLogits(x) : null;
        }
    }

    /** The same pass, returning the final residual stream of every row, [T, dim] (before the final norm). */
    public Tensor hidden(Arena arena, int[] tokens, int[] positions, List<KvCache> context, KvCache own) {
        List<KvCache> local = new ArrayList<>(context.size() + 1);
        local.addAll(context);
        local.add(own);
        Tensor x = backend.embed(arena, tokens);
        for (int layer = 0; layer < backend.config().layers(); layer++) {
            try (Arena temporaries = new Arena()) {
                Tensor q = step.begin(temporaries, layer, x, positions, own);
                Tensor next = step.end(temporaries, layer, x, q, positions, local, List.of());
                x.close();
                x = temporaries.moveTo(arena, next);
            }
        }
        return x;
    }

    /** Logits [vocab] of the last row of x [T, dim]. */
    public float[] lastRowLogits(Tensor x) {
        return lastRowLogitsEach(List.of(x)).get(0);
    }

    /**
     * {@link #lastRowLogits} of several residual streams at once (a query host's batch): element i is bit for bit
     * {@code lastRowLogits(xs.get(i))}, the rows sharing the backend's pass over the output head.
     */
    public List<float[]> lastRowLogitsEach(List<Tensor> xs) {
        try (Arena scope = new Arena()) {
            List<Tensor> lastRows = new ArrayList<>(xs.size());
            for (Tensor x : xs) {
                int rows = x.dim(0);
                // a decode step: x is its own last row, no slice (a native copy in DJL, 25-150 us)
                lastRows.add(rows == 1 ? x : backend.rows(scope, x, rows - 1, rows));
            }
            return backend.logitsEach(lastRows);
        }
    }

    /** Positions start, start+1, ..., start+count-1. */
    public static int[] range(int start, int count) {
        int[] positions = new int[count];
        for (int i = 0; i < count; i++) {
            positions[i] = start + i;
        }
        return positions;
    }
}
