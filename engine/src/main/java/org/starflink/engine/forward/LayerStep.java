package org.starflink.engine.forward;

import java.util.ArrayList;
import java.util.List;
import org.starflink.engine.attention.AttentionPartial;
import org.starflink.engine.backend.Arena;
import org.starflink.engine.backend.Backend;
import org.starflink.engine.backend.KvCache;
import org.starflink.engine.backend.Partial;
import org.starflink.engine.backend.Qkv;
import org.starflink.engine.backend.Tensor;

/**
 * One decoder layer: THE step that every mode composes, split in two halves exactly where partial attention
 * from other workers comes in.
 * <pre>
 *   q = begin(x, positions, own)        q, k, v = projectQkv(x); append k, v to own          q [T, H, hd]
 *   x' = end(x, q, local, remote)       A = merge(remote partials..., attend(q, c) for c in local)
 *                                       x' = finishLayer(x, A)                                x' [T, dim]
 * </pre>
 * Global decoding: local = [own], no remote. Star phase 1 of block i: local = [anchor, own]. The query host:
 * local = [own], remote = the blocks' partials of q (in block order). A context block's side of phase 2 is
 * {@link Backend#attend} alone. Partials are merged in the order remote..., local..., so a caller that passes
 * them in a canonical order gets bit-identical results on every run and replay. Two local caches and no remote
 * partial (phase 1) go through {@link Backend#attendBoth}, whose result is that same merge.
 */
public final class LayerStep {
    private final Backend backend;

    public LayerStep(Backend backend) {
        this.backend = backend;
    }

    /**
     * The first half: the rows' q, k and v; k and v are appended to {@code own} for this layer.
     *
     * @param x [T, dim] the residual stream entering the layer
     * @return q [T, H, hd], RoPE applied, in {@code arena}
     */
    public Tensor begin(Arena arena, int layer, Tensor x, int[] positions, KvCache own) {
        Qkv qkv = backend.projectQkv(arena, layer, x, positions);
        own.append(layer, positions, qkv.k(), qkv.v());
        qkv.k().close(); // the cache holds its own copy
        qkv.v().close();
        return qkv.q();
    }

    /**
     * The second half: attention of q over each local cache (own included), merged with the remote partials,
     * then the rest of the layer.
     *
     * @param remote partials of q over other workers' KV, host form, in a canonical order; may be empty
     * @return the residual stream leaving the layer, [T, dim], in {@code arena}
     */
    public Tensor end(Arena arena, int layer, Tensor x, Tensor q, int[] positions, List<KvCache> local,
                      List<AttentionPartial> remote) {
        return backend.finishLayer(arena, layer, x, attention(arena, layer, q, positions, local, remote));
    }

    /**
     * {@link #begin} for several independent sets of rows at the same layer (the members of a query host's batch):
     * element i is bit for bit {@code begin(arena, layer, xs.get(i), positions.get(i), owns.get(i))}; the backend may
     * share its pass over the weights ({@link Backend#projectQkvEach}).
     */
    public List<Tensor> beginEach(Arena arena, int layer, List<Tensor> xs, List<int[]> positions, List<KvCache> owns) {
        List<Qkv> qkvs = backend.projectQkvEach(arena, layer, xs, positions);
        List<Tensor> qs = new ArrayList<>(qkvs.size());
        for (int set = 0; set < qkvs.size(); set++) {
            Qkv qkv = qkvs.get(set);
            owns.get(set).append(layer, positions.get(set), qkv.k(), qkv.v());
            qkv.k().close();
            qkv.v().close();
            qs.add(qkv.q());
        }
        return qs;
    }

    /**
     * {@link #end} for several independent sets of rows at the same layer: element i is bit for bit {@code end} of
     * set i; the backend may share its pass over the weights ({@link Backend#finishLayerEach}).
     */
    public List<Tensor> endEach(Arena arena, int layer, List<Tensor> xs, List<Tensor> qs, List<int[]> positions,
                                List<List<KvCache>> locals, List<List<AttentionPartial>> remotes) {
        List<Tensor> attentions = new ArrayList<>(xs.size());
        for (int set = 0; set < xs.size(); set++) {
            attentions.add(attention(arena, layer, qs.get(set), positions.get(set), locals.get(set),
                    remotes.get(set)));
        }
        return backend.finishLayerEach(arena, layer, xs, attentions);
    }

    /** The merged attention output [T, H, hd] of q over the local caches and the remote partials. */
    private Tensor attention(Arena arena, int layer, Tensor q, int[] positions, List<KvCache> local,
                             List<AttentionPartial> remote) {
        Partial merged;
        if (remote.isEmpty() && local.size() == 2) { // phase 1 over [anchor; own]: one pass where the backend can
            merged = backend.attendBoth(arena, q, positions, local.get(0), local.get(1), layer);
        } else {
            List<Partial> partials = new ArrayList<>(remote.size() + local.size());
            for (AttentionPartial partial : remote) {
                partials.add(backend.upload(arena, partial));
            }
            for (KvCache cache : local) {
                partials.add(backend.attend(arena, q, positions, cache, layer));
            }
            merged = partials.size() == 1 ? partials.get(0) : backend.merge(arena, partials);
        }
        return merged.output();
    }
}
