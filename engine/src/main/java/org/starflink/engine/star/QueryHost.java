package org.starflink.engine.star;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.starflink.engine.EngineException;
import org.starflink.engine.attention.AttentionPartial;
import org.starflink.engine.attention.LayerRequest;
import org.starflink.engine.backend.Arena;
import org.starflink.engine.backend.Backend;
import org.starflink.engine.backend.KvCache;
import org.starflink.engine.backend.Tensor;
import org.starflink.engine.forward.LayerStep;
import org.starflink.engine.forward.Transformer;
import org.starflink.engine.model.ModelConfig;
import org.starflink.engine.wire.HostState;
import org.starflink.engine.wire.KvPage;
import org.starflink.engine.wire.KvPages;

/**
 * Star Attention phase 2 for one question: the query host. It runs every non-attention part of the model for
 * the question and generated tokens and keeps their KV (nobody else does); per layer it hands a
 * {@link LayerRequest} to every context block and merges their partials with its own, exactly: the layer is
 * {@link LayerStep}'s begin, the wire, then its end with the blocks' partials as remote ones.
 *
 * <p>One pass over T new tokens:
 * <pre>
 *   LayerRequest r = host.start(tokens);
 *   while (r != null) { r = host.complete(partials of r from every block); }
 *   float[] logits = host.logits();
 * </pre>
 * The same object drives the single-process Star session and the Flink query host, so both compute the same
 * numbers. Partials are merged in block order whatever order they arrived in: the result is bit-identical across
 * runs and replays. Holds backend memory (its KV, the pass in progress): close it when the question is done.
 */
public final class QueryHost implements AutoCloseable {
    private final Transformer transformer;
    private final Backend backend;
    private final LayerStep step;
    private final KvCache own;
    private int nextPosition;

    // The pass in progress.
    private Arena pass;            // holds x
    private Arena layerScope;      // holds q from a layer's request to its completion
    private Tensor x;              // [T, dim] residual stream entering the current layer
    private Tensor q;              // [T, H, hd] the current layer's query rows
    private float[] qHost;         // the same on the host (what went on the wire; kept for the state)
    private int[] positions;       // [T]
    private int layer = -1;        // -1 when no pass is in progress
    private float[] logits;        // [vocab] after the last completed pass

    /** @param contextLength N: the question's first token sits at position N */
    public QueryHost(Transformer transformer, int contextLength, int expectedTokens) {
        this(transformer, contextLength, transformer.backend().newKvCache(expectedTokens));
    }

    private QueryHost(Transformer transformer, int nextPosition, KvCache own) {
        this.transformer = transformer;
        this.backend = transformer.backend();
        this.step = transformer.step();
        this.own = own;
        this.nextPosition = nextPosition;
    }

    /** Begins a pass over new tokens; returns the request for layer 0. */
    public LayerRequest start(int[] tokens) {
        if (layer >= 0) {
            throw new IllegalStateException("a pass is already in progress at layer " + layer);
        }
        pass = new Arena();
        x = backend.embed(pass, tokens);
        positions = Transformer.range(nextPosition, tokens.length);
        layer = 0;
        return project();
    }

    /**
     * Finishes the current layer with the context blocks' partials, in block order. Returns the next layer's
     * request, or null when the pass is complete and {@link #logits()} holds the last row's logits.
     */
    public LayerRequest complete(List<AttentionPartial> blockPartials) {
        if (layer < 0) {
            throw new IllegalStateException("no pass in progress");
        }
        Tensor next = step.end(layerScope, layer, x, q, positions, List.of(own), blockPartials);
        enterNextLayer(layerScope, next);
        if (layer < backend.config().layers()) {
            return project();
        }
        endPass(transformer.lastRowLogits(x));
        return null;
    }

    /**
     * {@link #complete} of several hosts at the same layer of their passes (the members of a Flink query host's
     * batch), each with its blocks' partials: element i is bit for bit {@code hosts.get(i).complete(partials.get(i))},
     * but their rows share the backend's pass over each weight matrix ({@link LayerStep#endEach},
     * {@link LayerStep#beginEach}, {@link Backend#logitsEach}). The hosts must share one transformer.
     */
    public static List<LayerRequest> completeEach(List<QueryHost> hosts, List<List<AttentionPartial>> partials) {
        QueryHost first = hosts.get(0);
        int layer = first.layer;
        List<Tensor> xs = new ArrayList<>(hosts.size());
        List<Tensor> qs = new ArrayList<>(hosts.size());
        List<int[]> positions = new ArrayList<>(hosts.size());
        List<KvCache> owns = new ArrayList<>(hosts.size());
        for (QueryHost host : hosts) {
            if (host.layer < 0 || host.layer != layer || host.transformer != first.transformer) {
                throw new IllegalStateException("hosts of one batch must be at the same layer of one transformer: "
                        + host.layer + " vs " + layer);
            }
            xs.add(host.x);
            qs.add(host.q);
            positions.add(host.positions);
            owns.add(host.own);
        }
        try (Arena scope = new Arena()) {
            List<Tensor> nexts = first.step.endEach(scope, layer, xs, qs, positions,
                    owns.stream().map(List::of).toList(), partials);
            for (int i = 0; i < hosts.size(); i++) {
                hosts.get(i).enterNextLayer(scope, nexts.get(i));
            }
        }
        List<Tensor> nextXs = hosts.stream().map(host -> host.x).toList();
        LayerRequest[] requests = new LayerRequest[hosts.size()];
        if (layer + 1 < first.backend.config().layers()) {
            try (Arena scope = new Arena()) {
                List<Tensor> nextQs = first.step.beginEach(scope, layer + 1, nextXs, positions, owns);
                for (int i = 0; i < hosts.size(); i++) {
                    QueryHost host = hosts.get(i);
                    host.layerScope = new Arena();
                    requests[i] = host.request(scope.moveTo(host.layerScope, nextQs.get(i)));
                }
            }
            return Arrays.asList(requests);
        }
        List<float[]> logits = first.transformer.lastRowLogitsEach(nextXs);
        for (int i = 0; i < hosts.size(); i++) {
            hosts.get(i).endPass(logits.get(i));
        }
        return Arrays.asList(requests); // all null: every pass is complete
    }

    /** The layer's output {@code next} (owned by {@code scope}) becomes the residual stream of the next layer. */
    private void enterNextLayer(Arena scope, Tensor next) {
        x.close();
        x = scope.moveTo(pass, next);
        closeLayer();
        layer++;
    }

    private void endPass(float[] lastRowLogits) {
        logits = lastRowLogits;
        nextPosition += positions.length;
        layer = -1;
        pass.close();
        pass = null;
        x = null;
        positions = null;
    }

    private LayerRequest project() {
        layerScope = new Arena();
        return request(step.begin(layerScope, layer, x, positions, own));
    }

    /** The current layer's request for its query rows {@code layerQ} (owned by the layer's scope). */
    private LayerRequest request(Tensor layerQ) {
        q = layerQ;
        qHost = backend.download(q);
        return new LayerRequest(layer, positions, qHost);
    }

    private void closeLayer() {
        if (layerScope != null) {
            layerScope.close();
        }
        layerScope = null;
        q = null;
        qHost = null;
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

    /** True between {@link #start} and the {@link #complete} of the last layer. */
    public boolean passInProgress() {
        return layer >= 0;
    }

    /** The host's whole state ({@link HostState}); {@link #restore} continues exactly where this stopped. */
    public HostState state() {
        return new HostState(nextPosition, layer, positions, x == null ? null : backend.download(x), qHost, logits,
                KvPages.pagesFrom(own, Integer.MAX_VALUE, 0));
    }

    /**
     * The state without the KV, for an owner that keeps the KV pages apart ({@link #changedKvPages}): small (the
     * rows of the pass in progress). Logits are not in it: they are read by the caller right after the pass that
     * made them, before any state is written.
     */
    public HostState passState() {
        return new HostState(nextPosition, layer, positions, x == null ? null : backend.download(x), qHost, null,
                List.of());
    }

    /**
     * The KV pages the layer in progress changed: those holding the rows this pass appended to its layer, from the
     * page of the first (rewritten whole, as blocks do) to the last. Together with the pages returned for every
     * earlier layer and pass they are the host's whole KV. Only between a request and its completion.
     */
    public List<KvPage> changedKvPages(int pageTokens) {
        if (layer < 0) {
            throw new IllegalStateException("no pass in progress");
        }
        return KvPages.pagesFrom(own, pageTokens, own.length(layer) - positions.length, layer);
    }

    public static QueryHost restore(Transformer transformer, HostState state) {
        Backend backend = transformer.backend();
        ModelConfig config = backend.config();
        QueryHost host = new QueryHost(transformer, state.nextPosition(), KvPages.assemble(backend, state.pages()));
        try {
            host.layer = state.layer();
            host.logits = state.logits();
            if (state.layer() >= 0) {
                if (state.layer() >= config.layers() || state.positions() == null || state.x() == null
                        || state.q() == null) {
                    throw new EngineException("query host state does not fit the model: pass at layer "
                            + state.layer() + " of " + config.layers());
                }
                int rows = state.positions().length;
                host.positions = state.positions();
                host.pass = new Arena();
                host.x = backend.upload(host.pass, state.x(), rows, config.dim());
                host.layerScope = new Arena();
                host.q = backend.upload(host.layerScope, state.q(), rows, config.heads(), config.headDim());
                host.qHost = state.q();
            }
            return host;
        } catch (RuntimeException e) {
            host.close();
            throw e instanceof EngineException ? e
                    : new EngineException("query host state does not fit the model: " + e.getMessage(), e);
        }
    }

    /** Frees the host's KV and any pass in progress. */
    @Override
    public void close() {
        closeLayer();
        if (pass != null) {
            pass.close();
            pass = null;
        }
        own.close();
    }
}
