package org.starflink.engine.star;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.List;
import org.starflink.engine.EngineException;
import org.starflink.engine.attention.AttentionMerge;
import org.starflink.engine.attention.AttentionPartial;
import org.starflink.engine.backend.Backend;
import org.starflink.engine.backend.QkvProjection;
import org.starflink.engine.forward.KvCache;
import org.starflink.engine.forward.Transformer;
import org.starflink.engine.wire.KvPage;
import org.starflink.engine.wire.KvPages;
import org.starflink.engine.wire.PhaseTwoCodec;

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
    private static final int STATE_VERSION = 1;

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

    /** True between {@link #start} and the {@link #complete} of the last layer. */
    public boolean passInProgress() {
        return layer >= 0;
    }

    /**
     * The host's whole state as bytes (for Flink keyed state): its own KV, the next position, and the pass in
     * progress (residual stream, layer, own partial). {@link #fromBytes} continues exactly where this stopped.
     */
    public byte[] toBytes() {
        try (var bytes = new ByteArrayOutputStream();
             var out = new DataOutputStream(bytes)) {
            out.writeByte(STATE_VERSION);
            out.writeInt(nextPosition);
            out.writeInt(layer);
            writeFloats(out, x);
            writeInts(out, positions);
            writeFloats(out, logits);
            writeBytes(out, ownPartial == null ? null : PhaseTwoCodec.toBytes(ownPartial));
            var pages = KvPages.pagesFrom(own, Integer.MAX_VALUE, 0);
            out.writeInt(pages.size());
            for (var page : pages) {
                writeBytes(out, page.toBytes());
            }
            out.flush();
            return bytes.toByteArray();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public static QueryHost fromBytes(Transformer transformer, byte[] state) {
        try (var in = new DataInputStream(new ByteArrayInputStream(state))) {
            int version = in.readByte();
            if (version != STATE_VERSION) {
                throw new EngineException("unsupported query host state version " + version);
            }
            int nextPosition = in.readInt();
            int layer = in.readInt();
            float[] x = readFloats(in);
            int[] positions = readInts(in);
            float[] logits = readFloats(in);
            byte[] partial = readBytes(in);
            int pageCount = in.readInt();
            var pages = new ArrayList<KvPage>(pageCount);
            for (int i = 0; i < pageCount; i++) {
                pages.add(KvPage.fromBytes(readBytes(in)));
            }
            var config = transformer.backend().config();
            // A pass in progress has appended KV to layers < layer only: rebuild layer by layer.
            QueryHost host = new QueryHost(transformer, nextPosition, Math.max(1, pages.size()));
            for (var page : pages) {
                host.own.append(page.layer(), Transformer.range(page.firstPosition(), page.count()), page.keys(),
                        page.values());
            }
            host.layer = layer;
            host.x = x;
            host.positions = positions;
            host.logits = logits;
            host.ownPartial = partial == null ? null : PhaseTwoCodec.partialFromBytes(partial);
            if (host.own.layers() != config.layers()) {
                throw new IllegalStateException("state does not fit the model");
            }
            return host;
        } catch (IOException e) {
            throw new EngineException("corrupt query host state: " + e.getMessage(), e);
        }
    }


    private static void writeFloats(DataOutputStream out, float[] values) throws IOException {
        out.writeInt(values == null ? -1 : values.length);
        if (values != null) {
            for (float v : values) {
                out.writeFloat(v);
            }
        }
    }

    private static float[] readFloats(DataInputStream in) throws IOException {
        int n = in.readInt();
        if (n < 0) {
            return null;
        }
        float[] values = new float[n];
        for (int i = 0; i < n; i++) {
            values[i] = in.readFloat();
        }
        return values;
    }

    private static void writeInts(DataOutputStream out, int[] values) throws IOException {
        out.writeInt(values == null ? -1 : values.length);
        if (values != null) {
            for (int v : values) {
                out.writeInt(v);
            }
        }
    }

    private static int[] readInts(DataInputStream in) throws IOException {
        int n = in.readInt();
        if (n < 0) {
            return null;
        }
        int[] values = new int[n];
        for (int i = 0; i < n; i++) {
            values[i] = in.readInt();
        }
        return values;
    }

    private static void writeBytes(DataOutputStream out, byte[] value) throws IOException {
        out.writeInt(value == null ? -1 : value.length);
        if (value != null) {
            out.write(value);
        }
    }

    private static byte[] readBytes(DataInputStream in) throws IOException {
        int n = in.readInt();
        if (n < 0) {
            return null;
        }
        return in.readNBytes(n);
    }
}
