package org.starflink.engine.forward;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.starflink.engine.attention.AttentionMerge;
import org.starflink.engine.attention.AttentionPartial;
import org.starflink.engine.backend.Backend;
import org.starflink.engine.backend.QkvProjection;

/**
 * The decoder's forward pass over a backend, with attention over several KV caches merged exactly by
 * log-sum-exp. One pass over T new tokens:
 * <pre>
 *   x = embed(tokens)                                   [T, dim]
 *   per layer: q,k,v = projectQkv(x)                    [T, H, hd], [T, Hkv, hd]
 *              append k,v to {@code own}
 *              A = merge(attend(q, c) for c in {@code context} + [own])   [T, H, hd]
 *              x = finishLayer(x, A)
 *   logits of the last row
 * </pre>
 * Global prefill is {@code context = []}; Star phase 1 for block i is {@code context = [anchor KV]}, own = the
 * block's cache; the query host in phase 2 attends to every block's cache plus its own.
 */
public final class Transformer {
    private final Backend backend;

    public Transformer(Backend backend) {
        this.backend = backend;
    }

    public Backend backend() {
        return backend;
    }

    /**
     * Runs T tokens through every layer, appending their KV to {@code own}.
     *
     * @param context     caches the tokens also attend to (keys visible by position); may be empty
     * @param wantLogits  whether to compute the last row's logits (phase 1 does not need them)
     * @return the last row's logits [vocab], or null
     */
    public float[] forward(int[] tokens, int[] positions, List<KvCache> context, KvCache own, boolean wantLogits) {
        float[] x = hidden(tokens, positions, context, own);
        return wantLogits ? lastRowLogits(x) : null;
    }

    /** The same pass, returning the final residual stream of every row, [T, dim] (before the final norm). */
    public float[] hidden(int[] tokens, int[] positions, List<KvCache> context, KvCache own) {
        float[] x = backend.embed(tokens);
        for (int layer = 0; layer < backend.config().layers(); layer++) {
            QkvProjection qkv = backend.projectQkv(layer, x, positions);
            own.append(layer, positions, qkv.k(), qkv.v());
            List<AttentionPartial> partials = new ArrayList<>(context.size() + 1);
            for (KvCache cache : context) {
                partials.add(backend.attend(qkv.q(), positions, cache.span(layer)));
            }
            partials.add(backend.attend(qkv.q(), positions, own.span(layer)));
            AttentionPartial merged = partials.size() == 1 ? partials.get(0) : AttentionMerge.merge(partials);
            x = backend.finishLayer(layer, x, merged.output());
        }
        return x;
    }

    /** Logits [vocab] of the last row of x [T, dim]. */
    public float[] lastRowLogits(float[] x) {
        int dim = backend.config().dim();
        return backend.logits(Arrays.copyOfRange(x, x.length - dim, x.length));
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
