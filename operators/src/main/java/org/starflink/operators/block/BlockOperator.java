package org.starflink.operators.block;

import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.state.ListState;
import org.apache.flink.api.common.state.ListStateDescriptor;
import org.apache.flink.api.common.state.MapState;
import org.apache.flink.api.common.state.MapStateDescriptor;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.PrimitiveArrayTypeInfo;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.formats.avro.typeutils.AvroTypeInfo;
import org.apache.flink.streaming.api.functions.co.KeyedCoProcessFunction;
import org.apache.flink.util.Collector;
import org.apache.flink.util.OutputTag;
import org.starflink.engine.attention.AttentionPartial;
import org.starflink.engine.backend.Backend;
import org.starflink.engine.backend.KvCache;
import org.starflink.engine.forward.Transformer;
import org.starflink.engine.star.BlockAttention;
import org.starflink.engine.star.BlockEncoder;
import org.starflink.engine.star.ContextBlock;
import org.starflink.engine.wire.KvPage;
import org.starflink.engine.wire.KvPages;
import org.starflink.engine.wire.PhaseTwoCodec;
import org.starflink.operators.messages.BlockCommand;
import org.starflink.operators.messages.BlockRequest;
import org.starflink.operators.messages.HostMessage;
import org.starflink.operators.messages.BlockKeys;
import org.starflink.operators.model.ModelLocation;
import org.starflink.schemas.BlockEvent;
import org.starflink.schemas.BlockEventKind;

/**
 * A context block (keyed by document, version and block index): Star Attention phase 1 when its block arrives,
 * phase 2 for every layer request of every query host about it (one request carries the rows of every question
 * of the host's batch that covers this block).
 *
 * <p>State (RocksDB in production): the block's KV as fixed-size pages in a {@link MapState} of the engine's
 * binary {@link KvPage} form (no Kryo; no value grows with the block), a small {@link BlockMeta}, and the layer
 * requests that arrived before the block was encoded. Next to the state, an operator-local LRU of decoded KV so
 * that a layer request does not deserialize pages; with {@code widenedKv} its entries are {@linkplain KvCache#seal
 * sealed}, so that a request does not widen the BF16 keys and values either (three times the bytes per block in
 * the LRU's budget, the same numbers). Blocks never talk to each other.
 *
 * <p>Anchor reuse: blocks of one document on one subtask share the anchor's KV (encoded once per document
 * version per subtask, held in a small operator-local cache).
 *
 * <p>A DROP (new document version, delete) does not clear the block at once: questions that started on this
 * version keep sending requests, so the block retires once no request has arrived for the grace period. With
 * an idle TTL (the documents' state TTL) a block nobody asked about for that long is cleared too; a question admitted
 * over it counts as a use from its admission (a TOUCH from the document operator), since it may wait at the loop's
 * cap before its first request.
 *
 * <p>What phase 1 did goes to the side output {@link #BLOCK_EVENTS} (encoded, skipped, retired) and to the
 * metrics ({@link BlockMetrics}).
 */
public class BlockOperator extends KeyedCoProcessFunction<String, BlockCommand, BlockRequest, HostMessage> {
    public static final MapStateDescriptor<Integer, byte[]> PAGES = new MapStateDescriptor<>("kv-pages", Types.INT,
            PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO);
    public static final ValueStateDescriptor<BlockMeta> META = new ValueStateDescriptor<>("block-meta",
            BlockMeta.class);
    public static final ListStateDescriptor<BlockRequest> PENDING = new ListStateDescriptor<>("pending-requests",
            BlockRequest.class);

    private static final int ANCHOR_CACHE_ENTRIES = 8;

    /**
     * One {@link BlockEvent} per encode, per encode skipped (the block's KV was already in state, e.g. restored),
     * and per retirement: the record of what phase 1 did, across processes and restarts (the job writes it to the
     * block-events topic).
     */
    public static final OutputTag<BlockEvent> BLOCK_EVENTS = new OutputTag<>("block-events",
            new AvroTypeInfo<>(BlockEvent.class));

    private final ModelLocation model;
    private final int pageTokens;
    private final Duration retireGrace;
    private final long localCacheBytes;
    private final boolean widenedKv;
    /** Blocks nobody asked about for this long are cleared (null: kept until dropped). */
    private final Duration idleTtl;

    private transient MapState<Integer, byte[]> pages;
    private transient ValueState<BlockMeta> meta;
    private transient ListState<BlockRequest> pending;
    private transient Backend backend;
    private transient BlockEncoder encoder;
    private transient KvCacheLru decoded;
    private transient Map<String, KvCache> anchors;
    private transient BlockMetrics metrics;
    private transient PartialBundler bundler;

    public BlockOperator(ModelLocation model, int pageTokens, Duration retireGrace, long localCacheBytes,
                         boolean widenedKv, Duration idleTtl) {
        this.model = model;
        this.pageTokens = pageTokens;
        this.retireGrace = retireGrace;
        this.localCacheBytes = localCacheBytes;
        this.widenedKv = widenedKv;
        this.idleTtl = idleTtl;
    }

    @Override
    public void open(OpenContext context) {
        pages = getRuntimeContext().getMapState(PAGES);
        meta = getRuntimeContext().getState(META);
        pending = getRuntimeContext().getListState(PENDING);
        backend = model.backend(getRuntimeContext());
        encoder = new BlockEncoder(new Transformer(backend));
        decoded = new KvCacheLru(localCacheBytes);
        anchors = new LinkedHashMap<>(16, 0.75f, true) {
            @Override
            protected boolean removeEldestEntry(Map.Entry<String, KvCache> eldest) {
                if (size() <= ANCHOR_CACHE_ENTRIES) {
                    return false;
                }
                eldest.getValue().close(); // backend memory: freed now, not when the map forgets it
                return true;
            }
        };
        var task = getRuntimeContext().getTaskInfo();
        bundler = new PartialBundler(new HeldBlocks(task.getMaxNumberOfParallelSubtasks(),
                task.getNumberOfParallelSubtasks(), task.getIndexOfThisSubtask()));
        metrics = new BlockMetrics(getRuntimeContext().getMetricGroup(), decoded, bundler);
    }

    @Override
    public void processElement1(BlockCommand command, Context ctx, Collector<HostMessage> out) throws Exception {
        String key = ctx.getCurrentKey();
        BlockMeta current = meta.value();
        if (current != null && current.goneReason != null) {
            if (command.kind != BlockCommand.Kind.ENCODE) {
                return; // nothing left to touch or drop
            }
            meta.clear(); // the same key encoded anew (a document that expired and came back)
            current = null;
        }
        if (command.kind == BlockCommand.Kind.DROP) {
            if (current != null) {
                current.retiring = true;
                current.lastUsedMs = ctx.timerService().currentProcessingTime();
                meta.update(current);
                ctx.timerService().registerProcessingTimeTimer(current.lastUsedMs + retireGrace.toMillis());
            } else {
                pending.clear(); // never encoded: nothing will answer its waiting requests
            }
            return;
        }
        if (command.kind == BlockCommand.Kind.TOUCH) {
            // A question was admitted over the block; it may wait at the loop's cap before its first request.
            if (current != null && (current.retiring || idleTtl != null)) {
                current.lastUsedMs = ctx.timerService().currentProcessingTime();
                meta.update(current);
            }
            return;
        }
        if (current != null) {
            // Already encoded (a command replayed after a restore): the state survived, so no re-encoding.
            metrics.skipped();
            ctx.output(BLOCK_EVENTS, event(key, BlockEventKind.SKIPPED, command.tokens.length, 0));
            return;
        }
        long started = System.nanoTime();
        KvCache anchor = command.block == 0 ? null : anchors.computeIfAbsent(
                command.docId + "@" + command.version, k -> encoder.encodeAnchor(command.anchorTokens));
        KvCache kv = encoder.encode(new ContextBlock(command.block, command.start, command.tokens), anchor);
        for (KvPage page : KvPages.pagesFrom(kv, pageTokens, 0)) {
            pages.put(KvPages.stateKey(page), page.toBytes());
        }
        BlockMeta encoded = new BlockMeta();
        encoded.lastUsedMs = ctx.timerService().currentProcessingTime();
        meta.update(encoded);
        if (idleTtl != null) {
            ctx.timerService().registerProcessingTimeTimer(encoded.lastUsedMs + idleTtl.toMillis());
        }
        cache(key, kv);
        long nanos = System.nanoTime() - started;
        metrics.encoded(command.tokens.length, nanos, kv.bytes());
        ctx.output(BLOCK_EVENTS, event(key, BlockEventKind.ENCODED, command.tokens.length, nanos / 1_000_000));

        List<BlockRequest> waiting = new ArrayList<>();
        pending.get().forEach(waiting::add);
        pending.clear();
        for (BlockRequest request : waiting) {
            answer(request, kv, encoded.lastUsedMs, out);
        }
    }

    @Override
    public void processElement2(BlockRequest request, Context ctx, Collector<HostMessage> out) throws Exception {
        BlockMeta current = meta.value();
        if (current == null) {
            pending.add(request); // the block's encoding has not arrived yet
            return;
        }
        long now = ctx.timerService().currentProcessingTime();
        if (current.goneReason != null) {
            out.collect(HostMessage.blockGone(request.hostKey, request.block, request.pass, request.layer,
                    current.goneReason));
            bundler.cannotAnswer(request, now, out::collect);
            return;
        }
        if (current.retiring || idleTtl != null) { // only then does the last use matter
            current.lastUsedMs = now;
            meta.update(current);
        }
        answer(request, kvOf(ctx.getCurrentKey()), now, out);
    }

    /**
     * One partial batch per request, whatever the number of questions in its batch; it goes back in one bundle
     * with the answers of this subtask's other blocks to the same layer ({@link PartialBundler}).
     */
    private void answer(BlockRequest request, KvCache kv, long now, Collector<HostMessage> out) {
        List<AttentionPartial> partials = BlockAttention.answerEach(backend,
                PhaseTwoCodec.requestsFromBytes(request.requests), kv);
        bundler.answered(request, partials, now, out::collect);
        metrics.answered();
    }

    /** Before a checkpoint barrier: every answer gathered goes out ({@link BlockOperatorRunner}). */
    void flushBundles(Consumer<HostMessage> out) {
        bundler.flush(out);
    }

    /** Sends the bundles that stopped growing ({@link PartialBundler#sweep}). */
    void sweepBundles(long nowMs, long idleMs, Consumer<HostMessage> out) {
        bundler.sweep(nowMs, idleMs, out);
    }

    /** The block's KV from the local cache, else assembled from its pages (after a restore or an eviction). */
    private KvCache kvOf(String key) throws Exception {
        KvCache kv = decoded.get(key);
        if (kv == null) {
            List<KvPage> stored = new ArrayList<>();
            for (byte[] bytes : pages.values()) {
                stored.add(KvPage.fromBytes(bytes));
            }
            kv = KvPages.assemble(backend, stored);
            cache(key, kv);
            metrics.loadedFromState();
        }
        return kv;
    }

    /** Into the decoded-KV LRU: the block's KV is complete and immutable from here on. */
    private void cache(String key, KvCache kv) {
        if (widenedKv) {
            kv.seal();
        }
        decoded.put(key, kv);
    }

    @Override
    public void close() throws Exception {
        if (decoded != null) {
            decoded.clear();
        }
        if (anchors != null) {
            anchors.values().forEach(KvCache::close);
            anchors.clear();
        }
        super.close();
    }

    @Override
    public void onTimer(long timestamp, OnTimerContext ctx, Collector<HostMessage> out) throws Exception {
        BlockMeta current = meta.value();
        if (current == null) {
            return;
        }
        if (current.goneReason != null) { // a tombstone: gone one more period after the KV
            if (timestamp >= current.lastUsedMs + tombstonePeriod()) {
                meta.clear();
            }
            return;
        }
        // Retired: dropped, and unused for the grace period. Idle: unused for the TTL. Else look again later.
        long retireAt = current.retiring ? current.lastUsedMs + retireGrace.toMillis() : Long.MAX_VALUE;
        long expireAt = idleTtl != null ? current.lastUsedMs + idleTtl.toMillis() : Long.MAX_VALUE;
        long clearAt = Math.min(retireAt, expireAt);
        if (timestamp < clearAt) {
            if (clearAt != Long.MAX_VALUE) {
                ctx.timerService().registerProcessingTimeTimer(clearAt);
            }
            return;
        }
        pages.clear();
        pending.clear();
        decoded.remove(ctx.getCurrentKey());
        BlockMeta tombstone = new BlockMeta();
        tombstone.lastUsedMs = timestamp;
        tombstone.goneReason = timestamp >= retireAt
                ? "its document version was replaced or deleted (retired after starflink.block.retire-grace, "
                        + retireGrace + ")"
                : "unused for starflink.document.state-ttl (" + idleTtl + "), its KV expired";
        meta.update(tombstone);
        ctx.timerService().registerProcessingTimeTimer(timestamp + tombstonePeriod());
        metrics.dropped();
        ctx.output(BLOCK_EVENTS, event(ctx.getCurrentKey(), BlockEventKind.RETIRED, 0, 0));
    }

    /**
     * How long a cleared block's tombstone stays: one more TTL (or retire grace) after its KV. A question admitted
     * over the block that reaches it later still waits (docs/design.md, Known limits).
     */
    private long tombstonePeriod() {
        return Math.max(retireGrace.toMillis(), idleTtl == null ? 0 : idleTtl.toMillis());
    }

    private BlockEvent event(String key, BlockEventKind kind, int tokens, long phase1Ms) {
        BlockKeys.Parts parts = BlockKeys.parse(key);
        return BlockEvent.newBuilder().setBlockKey(key).setDocId(parts.docId()).setVersion(parts.version())
                .setBlock(parts.block()).setKind(kind).setTokens(tokens).setPhase1Ms(phase1Ms)
                .setSubtask(getRuntimeContext().getTaskInfo().getIndexOfThisSubtask())
                .setAttempt(getRuntimeContext().getTaskInfo().getAttemptNumber())
                .setEventMs(System.currentTimeMillis()).build();
    }
}
