package org.starflink.engine.attention;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.starflink.engine.testing.RandomModels.maxAbsDiff;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.RepetitionInfo;
import org.junit.jupiter.api.Test;
import org.starflink.engine.backend.Arena;
import org.starflink.engine.backend.KvCache;
import org.starflink.engine.backend.KvPrecision;
import org.starflink.engine.backend.ReferenceBackend;
import org.starflink.engine.testing.KvTesting;
import org.starflink.engine.model.ModelConfig;
import org.starflink.engine.testing.RandomModels;

/**
 * The log-sum-exp merge of partials over any split of a KV sequence equals attention over the whole sequence,
 * in every order and grouping, including rows that see no key of some (or every) part.
 */
class AttentionMergeTest {

    @RepeatedTest(25)
    void mergeOfAnySplitEqualsWholeAttention(RepetitionInfo repetition) {
        Random random = new Random(repetition.getCurrentRepetition());
        int kvHeads = 1 + random.nextInt(3);
        int heads = kvHeads * (1 + random.nextInt(3)); // GQA groups of 1..3
        int headDim = 2 * (1 + random.nextInt(8));
        int rows = 1 + random.nextInt(6);
        int keys = 1 + random.nextInt(60);
        ModelConfig config = RandomModels.config(heads * headDim, 1, heads, kvHeads, 16);
        ReferenceBackend backend = new ReferenceBackend(config, RandomModels.weights(config, 1), KvPrecision.F32);

        float[] q = gaussian(random, rows * heads * headDim, 3); // large scores: stress the exp
        float[] k = gaussian(random, keys * kvHeads * headDim, 1);
        float[] v = gaussian(random, keys * kvHeads * headDim, 1);
        int[] keyPositions = new int[keys];
        for (int s = 0; s < keys; s++) {
            keyPositions[s] = random.nextInt(keys + rows); // any order, duplicates allowed
        }
        int[] queryPositions = new int[rows];
        for (int t = 0; t < rows; t++) {
            queryPositions[t] = random.nextInt(keys + rows) - 2; // some rows see nothing at all
        }
        AttentionPartial whole = attend(backend, q, queryPositions, KvTesting.layerZero(backend, keyPositions, k, v));

        // Split the keys into random disjoint parts (some may be empty or fully masked for a row).
        List<AttentionPartial> parts = new ArrayList<>();
        int partCount = 1 + random.nextInt(Math.min(keys, 6));
        int[] cuts = random.ints(partCount - 1, 0, keys + 1).sorted().toArray();
        int start = 0;
        for (int p = 0; p <= cuts.length; p++) {
            int end = p < cuts.length ? cuts[p] : keys;
            int width = kvHeads * headDim;
            parts.add(attend(backend, q, queryPositions, KvTesting.layerZero(backend,
                    Arrays.copyOfRange(keyPositions, start, end), Arrays.copyOfRange(k, start * width, end * width),
                    Arrays.copyOfRange(v, start * width, end * width))));
            start = end;
        }

        for (int trial = 0; trial < 5; trial++) {
            Collections.shuffle(parts, random);
            AttentionPartial merged = mergeInRandomGroups(parts, random);
            assertClose(whole, merged);
        }
    }

    @Test
    void rowsWithNoVisibleKeyStayEmpty() {
        AttentionPartial a = AttentionPartial.empty(2, 2, 4);
        AttentionPartial b = AttentionPartial.empty(2, 2, 4);
        AttentionPartial merged = AttentionMerge.merge(List.of(a, b));
        for (float lse : merged.lse()) {
            assertEquals(Float.NEGATIVE_INFINITY, lse);
        }
        assertArrayEquals(new float[16], merged.output());
    }

    /** Merges a random grouping: pairs, then pairs of merged pairs... (associativity). */
    private static AttentionPartial mergeInRandomGroups(List<AttentionPartial> parts, Random random) {
        List<AttentionPartial> level = new ArrayList<>(parts);
        while (level.size() > 1) {
            List<AttentionPartial> next = new ArrayList<>();
            int i = 0;
            while (i < level.size()) {
                int group = Math.min(level.size() - i, 1 + random.nextInt(3));
                next.add(AttentionMerge.merge(level.subList(i, i + group)));
                i += group;
            }
            level = next;
        }
        return level.get(0);
    }

    private static void assertClose(AttentionPartial expected, AttentionPartial actual) {
        double outputDiff = maxAbsDiff(expected.output(), actual.output());
        double lseDiff = maxAbsDiff(expected.lse(), actual.lse());
        assertTrue(outputDiff <= 1e-5, "output differs by " + outputDiff);
        assertTrue(lseDiff <= 1e-5, "lse differs by " + lseDiff);
        for (int i = 0; i < expected.lse().length; i++) {
            assertEquals(Float.isInfinite(expected.lse()[i]), Float.isInfinite(actual.lse()[i]), "row/head " + i);
        }
    }

    /** Layer-0 attention of q over {@code kv} through the backend interface, on the host. */
    private static AttentionPartial attend(ReferenceBackend backend, float[] q, int[] queryPositions, KvCache kv) {
        var c = backend.config();
        try (kv; Arena arena = new Arena()) {
            var qTensor = backend.upload(arena, q, queryPositions.length, c.heads(), c.headDim());
            return backend.download(backend.attend(arena, qTensor, queryPositions, kv, 0));
        }
    }

    private static float[] gaussian(Random random, int n, double scale) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) (random.nextGaussian() * scale);
        }
        return x;
    }
}
