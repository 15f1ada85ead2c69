package org.starflink.engine.star;

import java.util.ArrayList;
import java.util.List;
import org.starflink.engine.attention.AttentionMerge;
import org.starflink.engine.attention.AttentionPartial;
import org.starflink.engine.backend.Backend;
import org.starflink.engine.backend.QkvProjection;
import org.starflink.engine.forward.KvCache;
import org.starflink.engine.forward.Transformer;

/**
 * Star Attention phase 2 for one question: the query host. It runs every non-attention part of the model for
 * the question and generated tokens and keeps their KV (nobody else does); per layer it hands a
 * {@link LayerRequest} to every context block and merges their partials with its own, exactly.
 *
 * <p>One pass over T new tokens:
 * <pre>
 *   LayerRequest r = host.start(tokens);
 *   while (r != null) { r = host.complete(partials of r from every block); }
 *   float[] logits = host.logits();
 * </pre>
 * The same object drives the single-process Star session and the Flink query host, so both compute the same
 * numbers. Partials are merged in block order whatever order they arrived in: the result is bit-identical
 * across runs and replays.
 */
public final class QueryHost {
    private final Transformer transformer;
    private final Backend backend;
    private final KvCache own;
    private int nextPosition;

    // The pass in progress.
    private float[] x;             // [T, dim] residual stream entering the current layer
    private int[] positions;       // [T]
    private int layer = -1;        // -1 when no pass is in progress
    private AttentionPartial ownPartial;
    private float[] logits;        // [vocab] after the last completed pass

    /** @param contextLength N: the question's first token sits at position N */
    public QueryHost(Transformer transformer, int contextLength, int expectedTokens) {
        this.transformer = transformer;
        this.backend = transformer.backend();
        this.own = new KvCache(backend.config().layers(), backend.config().kvWidth(), expectedTokens);
        this.nextPosition = contextLength;
    }

    /** Begins a pass over new tokens; returns the request for layer 0. */
    public LayerRequest start(int[] tokens) {
        if (layer >= 0) {
            throw new IllegalStateException("a pass is already in progress at layer " + layer);
        }
        x = backend.embed(tokens);
        positions = Transformer.range(nextPosition, tokens.length);
        layer = 0;
        return project();
    }

    /**
     * Finishes the current layer with the context blocks' partials (any order; one per block, sorted by block
     * index by the caller or given in block order). Returns the next layer's request, or null when the pass is
     * complete and {@link #logits()} holds the last row's logits.
     */
    public LayerRequest complete(List<AttentionPartial> blockPartials) {
        List<AttentionPartial> all = new ArrayList<>(blockPartials.size() + 1);
        all.addAll(blockPartials);
        all.add(ownPartial);
        AttentionPartial merged = all.size() == 1 ? all.get(0) : AttentionMerge.merge(all);
        x = backend.finishLayer(layer, x, merged.output());
        ownPartial = null;
        if (++layer < backend.config().layers()) {
            return project();
        }
        logits = transformer.lastRowLogits(x);
        nextPosition += positions.length;
        layer = -1;
        x = null;
        return null;
    }

    private LayerRequest project() {
        QkvProjection qkv = backend.projectQkv(layer, x, positions);
        own.append(layer, positions, qkv.k(), qkv.v());
        ownPartial = backend.attend(qkv.q(), positions, own.span(layer));
        return new LayerRequest(layer, positions, qkv.q());
    }

    public float[] logits() {
        return logits;
    }

    /** The next token's position. */
    public int nextPosition() {
        return nextPosition;
    }

    /** Bytes of KV the host holds for its question and generated tokens. */
    public long kvBytes() {
        return own.bytes();
    }
}
