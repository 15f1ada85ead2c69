package org.starflink.operators.block;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import org.apache.flink.runtime.state.KeyGroupRange;
import org.apache.flink.runtime.state.KeyGroupRangeAssignment;
import org.starflink.operators.messages.BlockKeys;
import org.starflink.operators.messages.BlockRequest;

/**
 * Which blocks of a document version this subtask holds: those whose key ({@link BlockKeys#of}) falls in its key
 * groups. Decided from the key groups Flink gave the subtask, not from a parallelism the sender assumed, so it holds
 * at any parallelism and after rescaling. The keys are made with this operator's max parallelism, which must be the
 * one the query host made its request keys with (both are the job's {@code pipeline.max-parallelism}); were they
 * apart, bundles would miss their count and go out on the idle sweep: slower, never wrong. Memoizes the key groups
 * of recent document versions (a key costs a placement search).
 */
final class HeldBlocks {
    private static final int DOCUMENTS_REMEMBERED = 256;

    private final int maxParallelism;
    private final KeyGroupRange keyGroups;
    /** Per document version ({@link BlockKeys#documentVersion}): the key group of each block made so far. */
    private final Map<String, int[]> blockKeyGroups = new LinkedHashMap<>(16, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<String, int[]> eldest) {
            return size() > DOCUMENTS_REMEMBERED;
        }
    };

    HeldBlocks(int maxParallelism, int parallelism, int subtask) {
        this.maxParallelism = maxParallelism;
        this.keyGroups = KeyGroupRangeAssignment.computeKeyGroupRangeForOperatorIndex(maxParallelism, parallelism,
                subtask);
    }

    /** How many of the blocks the request went to (0..blocks-1 of its document version) this subtask holds. */
    int of(BlockRequest request) {
        int blocks = request.blocks;
        int[] known = blockKeyGroups.get(request.hostKey);
        int made = known == null ? 0 : known.length;
        if (made < blocks) {
            BlockKeys.Parts document = BlockKeys.parse(request.blockKey);
            known = known == null ? new int[blocks] : Arrays.copyOf(known, blocks);
            for (int block = made; block < blocks; block++) {
                known[block] = KeyGroupRangeAssignment.assignToKeyGroup(
                        BlockKeys.of(document.docId(), document.version(), block, maxParallelism), maxParallelism);
            }
            blockKeyGroups.put(request.hostKey, known);
        }
        int held = 0;
        for (int block = 0; block < blocks; block++) {
            if (keyGroups.contains(known[block])) {
                held++;
            }
        }
        return held;
    }
}
