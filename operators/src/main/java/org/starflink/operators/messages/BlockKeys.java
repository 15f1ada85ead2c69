package org.starflink.operators.messages;

import org.apache.flink.runtime.state.KeyGroupRangeAssignment;

/**
 * The key of a context block: document, version, block index, and a placement salt. The version is part of it so
 * that a new version of a document never overwrites the KV that questions on the old version are still reading.
 *
 * <p><b>Placement.</b> A layer of a question waits for the slowest subtask's blocks, which it serves one after
 * another, so a document's blocks must spread evenly over the subtasks. Hashed plainly, 16 blocks split 11 / 5 or
 * 7 / 9 over two subtasks depending on the document's id (measured). So the key carries a salt, the smallest one
 * that puts block b in key group {@code target(b) = floor(frac(u + r(b)) * maxParallelism)}, where u is where the
 * document's version hashes to (documents start at different places) and r(b) is b's bit-reversed binary fraction
 * (0, 1/2, 1/4, 3/4, 1/8, ...): any run of consecutive blocks covers the key groups as evenly as a run of that
 * length can. Subtasks own contiguous ranges of key groups, so at parallelism 2 blocks 2k and 2k + 1 are always on
 * different subtasks, at 4 every four consecutive blocks are on four, and at any parallelism the counts differ by
 * about one; a rescaled job keeps the spread, because the key groups do not move. The key depends on the job's
 * max parallelism, which Flink fixes for the life of keyed state.
 */
public final class BlockKeys {
    private static final char SALT = '~';

    private BlockKeys() {
    }

    /**
     * Block {@code block}'s key for a job whose keyed operators have {@code maxParallelism} key groups. Costs about
     * {@code maxParallelism} string hashes: callers on a per-layer path keep the keys they made.
     */
    public static String of(String docId, long version, int block, int maxParallelism) {
        String documentVersion = documentVersion(docId, version);
        String unsalted = documentVersion + "#" + block;
        int target = targetKeyGroup(documentVersion, block, maxParallelism);
        if (KeyGroupRangeAssignment.assignToKeyGroup(unsalted, maxParallelism) == target) {
            return unsalted;
        }
        // Each salt hits the target with probability 1 / maxParallelism; the search ends almost surely well before
        // 64 times that, and is bounded only to say so.
        for (int salt = 1; salt <= 64 * maxParallelism; salt++) {
            String salted = unsalted + SALT + salt;
            if (KeyGroupRangeAssignment.assignToKeyGroup(salted, maxParallelism) == target) {
                return salted;
            }
        }
        return unsalted;
    }

    /** The key group block {@code block} of the document version {@code documentVersion} is placed in. */
    static int targetKeyGroup(String documentVersion, int block, int maxParallelism) {
        double start = KeyGroupRangeAssignment.assignToKeyGroup(documentVersion, maxParallelism)
                / (double) maxParallelism;
        double at = start + bitReversedFraction(block);
        return (int) ((at - Math.floor(at)) * maxParallelism);
    }

    /** b's binary digits mirrored behind the point: 0, 1/2, 1/4, 3/4, 1/8, 5/8, ... (the van der Corput sequence). */
    static double bitReversedFraction(int b) {
        return (Integer.reverse(b) >>> 1) / (double) (1L << 31);
    }

    /**
     * The key of one version of a document: the query host's key (every question on that version shares one host,
     * so that their layer requests travel together) and the prefix of its blocks' keys.
     */
    public static String documentVersion(String docId, long version) {
        return docId + "@" + version;
    }

    /** A key's document, version and block. */
    public record Parts(String docId, long version, int block) {
    }

    /**
     * The parts of a key made by {@link #of}. Unambiguous whatever the doc_id holds: version, block and salt are
     * numbers, so the last '#' and the last '@' before it are the separators.
     */
    public static Parts parse(String key) {
        int hash = key.lastIndexOf('#');
        int at = key.lastIndexOf('@', hash);
        if (hash < 0 || at < 0) {
            throw new IllegalArgumentException("not a block key: " + key);
        }
        int salt = key.indexOf(SALT, hash);
        return new Parts(key.substring(0, at), Long.parseLong(key.substring(at + 1, hash)),
                Integer.parseInt(key.substring(hash + 1, salt < 0 ? key.length() : salt)));
    }
}
