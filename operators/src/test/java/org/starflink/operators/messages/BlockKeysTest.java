package org.starflink.operators.messages;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import java.util.UUID;
import org.apache.flink.runtime.state.KeyGroupRangeAssignment;
import org.junit.jupiter.api.Test;

class BlockKeysTest {
    private static final int MAX_PARALLELISM = 128;

    @Test
    void aDocumentsBlocksSpreadEvenlyOverTheSubtasksAtEveryParallelism() {
        Random random = new Random(14);
        int plainUneven = 0;
        for (int d = 0; d < 200; d++) {
            String docId = d % 2 == 0 ? UUID.nameUUIDFromBytes(new byte[] {(byte) d}).toString() : "doc-" + d;
            long version = 1 + random.nextInt(3);
            for (int parallelism : new int[] {1, 2, 3, 4, 8}) {
                int[] salted = new int[parallelism];
                int[] plain = new int[parallelism];
                for (int b = 0; b < 16; b++) {
                    salted[subtask(BlockKeys.of(docId, version, b, MAX_PARALLELISM), parallelism)]++;
                    plain[subtask(BlockKeys.documentVersion(docId, version) + "#" + b, parallelism)]++;
                }
                // 16 blocks: 16 / p each where p divides 16, else 5 or 6 (p = 3)
                for (int count : salted) {
                    assertTrue(count == 16 / parallelism || count == 16 / parallelism + 1,
                            docId + "@" + version + " at parallelism " + parallelism + ": "
                                    + java.util.Arrays.toString(salted));
                }
                if (parallelism == 2 && plain[0] != 8) {
                    plainUneven++;
                }
            }
        }
        // What the salt is for: hashed plainly most documents' 16 blocks split unevenly over two subtasks.
        assertTrue(plainUneven > 100, "plain keys uneven at parallelism 2 for " + plainUneven + " of 200 documents");
    }

    @Test
    void consecutiveBlocksAreOnDifferentSubtasks() {
        for (int b = 0; b + 1 < 64; b += 2) {
            assertTrue(subtask(BlockKeys.of("contract-7", 3, b, MAX_PARALLELISM), 2)
                    != subtask(BlockKeys.of("contract-7", 3, b + 1, MAX_PARALLELISM), 2), "blocks " + b + ", " + (b + 1));
        }
    }

    @Test
    void aKeyIsTheSameEveryTimeAndParsesBackWhateverTheDocIdHolds() {
        for (String docId : new String[] {"d", "d@4#x", "a~b#7@2", "~", "#"}) {
            for (int b = 0; b < 20; b++) {
                String key = BlockKeys.of(docId, 12, b, MAX_PARALLELISM);
                assertEquals(key, BlockKeys.of(docId, 12, b, MAX_PARALLELISM));
                assertEquals(new BlockKeys.Parts(docId, 12, b), BlockKeys.parse(key), key);
                assertTrue(key.startsWith(BlockKeys.documentVersion(docId, 12) + "#" + b), key);
            }
        }
    }

    @Test
    void withOneKeyGroupTheKeyIsUnsalted() {
        assertEquals("d@1#5", BlockKeys.of("d", 1, 5, 1));
    }

    @Test
    void theTargetsAreTheBitReversedFractions() {
        double[] expected = {0, 0.5, 0.25, 0.75, 0.125, 0.625, 0.375, 0.875};
        for (int b = 0; b < expected.length; b++) {
            assertEquals(expected[b], BlockKeys.bitReversedFraction(b), 0.0);
        }
    }

    private static int subtask(String key, int parallelism) {
        return KeyGroupRangeAssignment.assignKeyToParallelOperator(key, MAX_PARALLELISM, parallelism);
    }
}
