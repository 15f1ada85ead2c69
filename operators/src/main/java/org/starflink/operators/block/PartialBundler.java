package org.starflink.operators.block;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Consumer;
import org.starflink.engine.attention.AttentionPartial;
import org.starflink.engine.wire.PhaseTwoCodec;
import org.starflink.operators.messages.BlockRequest;
import org.starflink.operators.messages.HostMessage;

/**
 * Gathers the answers of this subtask's blocks to one layer of one host's pass into one message: the host sends the
 * layer to every block of its document, and the blocks one subtask holds ({@link HeldBlocks}) answer together, once
 * the last of them has answered. A layer then costs the host one message per subtask, not one per block.
 *
 * <p>Bundling moves no number: a bundle carries each block's own partial batch, and the host merges them in block
 * order whichever bundle brought them, so any split of a layer's answers gives the same bits (at any parallelism,
 * after rescaling, after a restore).
 *
 * <p>Kept in the heap only, so nothing gathered may stay here across a checkpoint: before a barrier passes the
 * operator {@link #flush}es everything gathered (the counts stay, so later answers still complete their bundle).
 * What the heap cannot know after a restore is how many of a layer's blocks answered before the checkpoint; such a
 * bundle never completes by count, and {@link #sweep} sends what it gathered once it stopped growing.
 */
final class PartialBundler {
    /** A bundle that gathered nothing for this long is forgotten (its layer ended, or a block never answers). */
    static final long FORGET_AFTER_MS = 60_000;

    private record Layer(String hostKey, long pass, int layer) {
    }

    private static final class Gathering {
        /** Held blocks that have not answered yet. */
        int missing;
        /** Answers not sent yet, by block: sent in block order. */
        final TreeMap<Integer, List<AttentionPartial>> batches = new TreeMap<>();
        long touchedMs;
    }

    private final HeldBlocks held;
    private final Map<Layer, Gathering> open = new HashMap<>();

    PartialBundler(HeldBlocks held) {
        this.held = held;
    }

    /** Block {@code request.block} answered with {@code partialBatch}; sends the bundle if it was the last. */
    void answered(BlockRequest request, List<AttentionPartial> partialBatch, long nowMs, Consumer<HostMessage> out) {
        countIn(request, partialBatch, nowMs, out);
    }

    /** The block cannot answer (it sent the host why): it no longer holds back the others' bundle. */
    void cannotAnswer(BlockRequest request, long nowMs, Consumer<HostMessage> out) {
        countIn(request, null, nowMs, out);
    }

    private void countIn(BlockRequest request, List<AttentionPartial> partialBatch, long nowMs,
                         Consumer<HostMessage> out) {
        Layer layer = new Layer(request.hostKey, request.pass, request.layer);
        Gathering gathering = open.computeIfAbsent(layer, k -> {
            Gathering fresh = new Gathering();
            fresh.missing = held.of(request); // once per layer: the first of its requests here
            return fresh;
        });
        gathering.touchedMs = nowMs;
        if (partialBatch != null && gathering.batches.putIfAbsent(request.block, partialBatch) != null) {
            return; // the same block twice: the first answer counted
        }
        gathering.missing--;
        if (gathering.missing <= 0) {
            open.remove(layer);
            send(layer, gathering, out);
        }
    }

    /** Before a checkpoint barrier: sends everything gathered; the counts stay. */
    void flush(Consumer<HostMessage> out) {
        open.forEach((layer, gathering) -> send(layer, gathering, out));
    }

    /**
     * Sends what the bundles that gathered nothing since {@code idleMs} hold (after a restore their count is too
     * high), and forgets those idle for {@link #FORGET_AFTER_MS}.
     */
    void sweep(long nowMs, long idleMs, Consumer<HostMessage> out) {
        Iterator<Map.Entry<Layer, Gathering>> entries = open.entrySet().iterator();
        while (entries.hasNext()) {
            Map.Entry<Layer, Gathering> entry = entries.next();
            Gathering gathering = entry.getValue();
            if (nowMs - gathering.touchedMs >= idleMs) {
                send(entry.getKey(), gathering, out);
            }
            if (nowMs - gathering.touchedMs >= FORGET_AFTER_MS) {
                entries.remove();
            }
        }
    }

    /** Layers still gathering ({@code bundlesGathering} gauge). */
    int open() {
        return open.size();
    }

    private static void send(Layer layer, Gathering gathering, Consumer<HostMessage> out) {
        if (gathering.batches.isEmpty()) {
            return;
        }
        int[] blocks = gathering.batches.keySet().stream().mapToInt(Integer::intValue).toArray();
        byte[] bundle = PhaseTwoCodec.bundleToBytes(blocks, new ArrayList<>(gathering.batches.values()));
        gathering.batches.clear();
        out.accept(HostMessage.partials(layer.hostKey(), layer.pass(), layer.layer(), bundle));
    }
}
