package org.starflink.engine.backend;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.starflink.engine.attention.AttentionPartial;
import org.starflink.engine.forward.Transformer;
import org.starflink.engine.model.ModelConfig;
import org.starflink.engine.testing.RandomModels;

/** The CPU backends' few-row attention: rows stacked from several questions get the numbers they get alone. */
class CpuKernelsTest {
    /** 6 query heads over 2 KV heads (groups of 3, so chains do not come in fours), head dim 8. */
    private static final ModelConfig CONFIG = RandomModels.config(48, 2, 6, 2, 20);

    @ParameterizedTest
    @EnumSource(KvPrecision.class)
    void stackedRowSetsGetBitForBitTheirAloneNumbers(KvPrecision precision) {
        Random random = new Random(7);
        Backend backend = new ReferenceBackend(CONFIG, RandomModels.weights(CONFIG, 1), precision);
        int width = CONFIG.kvWidth();
        KvCache cache = backend.newKvCache(4);
        try (Arena arena = new Arena()) {
            for (int layer = 0; layer < CONFIG.layers(); layer++) {
                cache.append(layer, Transformer.range(0, 50),
                        backend.upload(arena, RandomModels.vector(random, 50 * width), 50, CONFIG.kvHeads(),
                                CONFIG.headDim()),
                        backend.upload(arena, RandomModels.vector(random, 50 * width), 50, CONFIG.kvHeads(),
                                CONFIG.headDim()));
            }
        }
        HostKvCache kv = CpuKernels.hostCache(cache);
        // A decode row after every key, a prompt whose rows see part of the keys, a row that sees none.
        List<int[]> positions = List.of(new int[] {60}, new int[] {20, 21, 22, 23, 24}, new int[] {-1},
                new int[] {49, 50});
        int rowWidth = CONFIG.heads() * CONFIG.headDim();
        List<float[]> qs = new ArrayList<>();
        for (int[] p : positions) {
            qs.add(RandomModels.vector(random, p.length * rowWidth));
        }
        List<AttentionPartial> stacked = CpuKernels.attendEach(CONFIG, qs, positions, kv, 1);
        assertEquals(positions.size(), stacked.size());
        for (int set = 0; set < positions.size(); set++) {
            AttentionPartial alone = CpuKernels.attend(CONFIG, qs.get(set), positions.get(set), kv, 1);
            assertArrayEquals(alone.output(), stacked.get(set).output(), "set " + set);
            assertArrayEquals(alone.lse(), stacked.get(set).lse(), "set " + set);
        }
        assertEquals(Float.NEGATIVE_INFINITY, stacked.get(2).lse()[0]);
        cache.close();
    }

    /**
     * The two loop nests of {@link CpuKernels#attend} over keys that every row sees: the stacked one returns bit for
     * bit the per-pair loop's numbers, through the tails of its unrolled loops (a head size that is not a multiple
     * of 4, key counts around its chunk size and not multiples of 4) and for one to many rows.
     */
    @ParameterizedTest
    @EnumSource(KvPrecision.class)
    void stackedLoopNestGivesThePerPairLoopsNumbersBitForBit(KvPrecision precision) {
        Random random = new Random(11);
        for (int headDim : new int[] {6, 8, 64}) {
            int heads = 6;
            int kvHeads = 2;
            int width = kvHeads * headDim;
            for (int keyCount : new int[] {1, 3, 255, 257, 1030}) {
                HostKvCache kv = new HostKvCache(1, width, headDim, precision, keyCount, new HandleLedger(),
                        t -> ((HostTensor) t).data());
                HandleLedger ledger = new HandleLedger();
                kv.append(0, Transformer.range(0, keyCount),
                        new HostTensor(ledger, RandomModels.vector(random, keyCount * width), keyCount, kvHeads,
                                headDim),
                        new HostTensor(ledger, RandomModels.vector(random, keyCount * width), keyCount, kvHeads,
                                headDim));
                for (int rows : new int[] {1, 3, 16}) {
                    float[] q = RandomModels.vector(random, rows * heads * headDim);
                    int[] positions = new int[rows];
                    java.util.Arrays.fill(positions, keyCount + 2);
                    float scale = (float) (1.0 / Math.sqrt(headDim));
                    float[] stackedOut = new float[q.length];
                    float[] stackedLse = new float[rows * heads];
                    float[] perPairOut = new float[q.length];
                    float[] perPairLse = new float[rows * heads];
                    for (int kvHead = 0; kvHead < kvHeads; kvHead++) {
                        StackedAttention.attendHead(q, rows, heads, kvHead * 3, 3, headDim, kv, 0, kvHead, scale,
                                stackedOut, stackedLse);
                        CpuKernels.attendHeadPerPair(q, positions, heads, kvHead * 3, 3, headDim, kv, 0, kvHead,
                                scale, perPairOut, perPairLse);
                    }
                    String shape = "hd " + headDim + ", " + keyCount + " keys, " + rows + " rows";
                    assertArrayEquals(perPairOut, stackedOut, shape);
                    assertArrayEquals(perPairLse, stackedLse, shape);
                }
                kv.close();
            }
        }
    }

    /**
     * The Vector API's value loop ({@link VectorAttention}) returns the scalar loop's bits, through every tail: pairs
     * that do not fill a tile of 4, key counts not multiples of the scalar loop's 8, head sizes below a vector,
     * between one and four vectors, and past four. The build's JVMs carry the module, so the stacked loop nest above
     * runs it.
     */
    @Test
    void vectorValueLoopGivesTheScalarLoopsBitsForEveryTail() {
        assertTrue(VectorApi.PRESENT, "this JVM lacks --add-modules=jdk.incubator.vector");
        Random random = new Random(13);
        int lanes = VectorAttention.lanes();
        for (int hd : new int[] {6, lanes, 3 * lanes + 5, 4 * lanes, 5 * lanes, 8 * lanes + 3}) {
            for (int keyCount : new int[] {1, 7, 2 * lanes, 6 * lanes + 1, 1030}) {
                float[][] values = new float[keyCount][];
                for (int k = 0; k < keyCount; k++) {
                    values[k] = RandomModels.vector(random, hd);
                }
                for (int pairs : new int[] {1, 3, 4, 5, 48}) {
                    float[][] weights = new float[pairs][];
                    for (int pair = 0; pair < pairs; pair++) {
                        weights[pair] = RandomModels.vector(random, keyCount);
                    }
                    float[][] vectorSums = new float[pairs][hd];
                    float[][] scalarSums = new float[pairs][hd];
                    VectorAttention.weightedValues(weights, pairs, values, hd, keyCount, vectorSums);
                    StackedAttention.scalarWeightedValues(weights, pairs, values, hd, keyCount, scalarSums);
                    for (int pair = 0; pair < pairs; pair++) {
                        assertArrayEquals(scalarSums[pair], vectorSums[pair],
                                "hd " + hd + ", " + keyCount + " keys, " + pairs + " pairs: sums of " + pair);
                    }
                }
            }
        }
    }

    /**
     * A sealed cache (a context block in the block operator's LRU) keeps its keys and values widened: attention over
     * it returns the unsealed cache's numbers bit for bit, {@code bytes()} counts the float32 copies, and nothing
     * can be appended or written any more.
     */
    @ParameterizedTest
    @EnumSource(KvPrecision.class)
    void aSealedCacheGivesTheSameNumbersCountsItsCopiesAndRefusesAppends(KvPrecision precision) {
        Random random = new Random(5);
        int hd = CONFIG.headDim();
        int width = CONFIG.kvWidth();
        int keyCount = 300;
        HandleLedger ledger = new HandleLedger();
        HostKvCache kv = new HostKvCache(CONFIG.layers(), width, hd, precision, keyCount, ledger,
                t -> ((HostTensor) t).data());
        for (int layer = 0; layer < CONFIG.layers(); layer++) {
            kv.append(layer, Transformer.range(0, keyCount),
                    new HostTensor(ledger, RandomModels.vector(random, keyCount * width), keyCount,
                            CONFIG.kvHeads(), hd),
                    new HostTensor(ledger, RandomModels.vector(random, keyCount * width), keyCount,
                            CONFIG.kvHeads(), hd));
        }
        int rows = 5;
        float[] q = RandomModels.vector(random, rows * CONFIG.heads() * hd);
        int[] positions = new int[rows];
        java.util.Arrays.fill(positions, keyCount);
        List<AttentionPartial> before = new ArrayList<>();
        for (int layer = 0; layer < CONFIG.layers(); layer++) {
            before.add(CpuKernels.attend(CONFIG, q, positions, kv, layer));
        }
        long unsealedBytes = kv.bytes();

        kv.seal();

        for (int layer = 0; layer < CONFIG.layers(); layer++) {
            AttentionPartial after = CpuKernels.attend(CONFIG, q, positions, kv, layer);
            assertArrayEquals(before.get(layer).output(), after.output(), "layer " + layer);
            assertArrayEquals(before.get(layer).lse(), after.lse(), "layer " + layer);
        }
        long floats = 2L * CONFIG.layers() * keyCount * width * Float.BYTES;
        assertEquals(unsealedBytes + floats, kv.bytes(), "bytes of a sealed " + precision + " cache");
        HostTensor row = new HostTensor(ledger, new float[width], 1, CONFIG.kvHeads(), hd);
        IllegalStateException refused = assertThrows(IllegalStateException.class,
                () -> kv.append(0, new int[] {keyCount}, row, row));
        assertEquals("KV cache appended to after it was sealed", refused.getMessage());
        kv.close();
    }
}
