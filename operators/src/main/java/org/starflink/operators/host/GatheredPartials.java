package org.starflink.operators.host;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Consumer;
import org.apache.flink.api.common.state.MapState;
import org.starflink.engine.wire.PhaseTwoCodec;

/**
 * The partial bundles of each query host's layer in flight, gathered in the heap until the layer is complete.
 *
 * <p>A layer's bundles (at 16 questions, hundreds of KB each) live for one round trip: writing each into RocksDB and
 * reading it back when the last arrived cost a state put, a get and the memtable churn per bundle, for nothing a
 * failure would need except what is gathered when a checkpoint is taken. So they go into keyed state ({@code
 * batch-partials}, per host key, by first block) only then: {@link #store} runs before every checkpoint barrier ({@link
 * QueryHostOperatorRunner}), and after a restore a host's first bundle brings back what its layer had gathered.
 * Invariant: keyed state holds bundles of the host batch's current layer only (cleared when the layer completes
 * or the batch ends).
 */
final class GatheredPartials {
    private static final class Gathering {
        /** By first block: one subtask's bundles never overlap, so a first block seen twice is a duplicate. */
        final TreeMap<Integer, byte[]> bundles = new TreeMap<>();
        /** First blocks of the bundles not in keyed state yet. */
        final List<Integer> unstored = new ArrayList<>();
        int blocksReceived;
        /** Some bundle of this layer is in keyed state: clear it when the layer ends. */
        boolean stored;
    }

    /** The keyed state of the operator's current key. */
    private final MapState<Integer, byte[]> partials;
    private final Map<String, Gathering> byHost = new HashMap<>();

    GatheredPartials(MapState<Integer, byte[]> partials) {
        this.partials = partials;
    }

    /** The host's next layer went out: nothing of it has arrived (the previous layer was taken or forgotten). */
    void layerSent(String hostKey) {
        byHost.put(hostKey, new Gathering());
    }

    /**
     * A bundle of the current key's layer in flight arrived; returns the blocks its layer has received so far (a
     * duplicate bundle counts nothing). After a restore, the first one brings back what keyed state kept.
     */
    int add(String hostKey, byte[] bundle) throws Exception {
        Gathering gathering = byHost.get(hostKey);
        if (gathering == null) { // restored: the layer was sent before the checkpoint
            gathering = new Gathering();
            for (Map.Entry<Integer, byte[]> kept : partials.entries()) {
                gathering.bundles.put(kept.getKey(), kept.getValue());
                gathering.blocksReceived += PhaseTwoCodec.bundleBlocks(kept.getValue()).length;
                gathering.stored = true;
            }
            byHost.put(hostKey, gathering);
        }
        int[] covered = PhaseTwoCodec.bundleBlocks(bundle);
        if (gathering.bundles.putIfAbsent(covered[0], bundle) == null) {
            gathering.unstored.add(covered[0]);
            gathering.blocksReceived += covered.length;
        }
        return gathering.blocksReceived;
    }

    /** The current key's complete layer: its bundles in block order, forgotten here and in keyed state. */
    List<byte[]> take(String hostKey) throws Exception {
        Gathering gathering = byHost.remove(hostKey);
        if (gathering.stored) {
            partials.clear();
        }
        return new ArrayList<>(gathering.bundles.values());
    }

    /** The current key's batch ended: whatever its layer gathered is forgotten (in keyed state too). */
    void forget(String hostKey) {
        Gathering gathering = byHost.remove(hostKey);
        if (gathering == null || gathering.stored) { // unknown after a restore: keyed state may hold some
            partials.clear();
        }
    }

    /**
     * Before a checkpoint barrier: every bundle gathered since the last one goes into its host's keyed state
     * ({@code selectKey} makes a host key the operator's current key).
     */
    void store(Consumer<String> selectKey) throws Exception {
        for (Map.Entry<String, Gathering> entry : byHost.entrySet()) {
            Gathering gathering = entry.getValue();
            if (gathering.unstored.isEmpty()) {
                continue;
            }
            selectKey.accept(entry.getKey());
            for (int first : gathering.unstored) {
                partials.put(first, gathering.bundles.get(first));
            }
            gathering.unstored.clear();
            gathering.stored = true;
        }
    }
}
