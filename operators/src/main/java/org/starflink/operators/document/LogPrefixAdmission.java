package org.starflink.operators.document;

import java.util.Arrays;

/**
 * Which part of its document a question is answered over: the one rule that makes an answer depend only on the
 * Kafka log, not on how the job happened to interleave the documents and questions topics (a replay after a
 * failover interleaves them differently). Pure Java; the {@link DocumentOperator} applies it.
 *
 * <p><b>The rule.</b> A question whose Kafka record has timestamp {@code t} sees the blocks its document's version
 * had once the job had applied exactly the document records (in their partition's order) that come before the
 * first one with a timestamp above {@code t}; and it sees the document complete only if the record that completed
 * it came before that one too. With timestamps that grow along the partition (one producer, or LogAppendTime),
 * that is: the blocks formed from the chunks produced up to the question.
 *
 * <p><b>How it is decided.</b> The catalog keeps, per emitted block, the highest record timestamp of the version up
 * to the record that emitted it ({@link DocumentState#blockVisibleFrom}, non-decreasing), and the highest one so
 * far ({@link DocumentState#latestTimestamp}). A question is <i>decided</i> once a record above {@code t} has
 * arrived (later records cannot change what it sees) or the version is complete or broken (nothing more changes
 * its catalog); until then it waits. It then sees the blocks whose visible-from is at most {@code t}.
 *
 * <p><b>Untimed</b>: a question record without a timestamp, or a version whose state was written before this rule
 * (no {@link DocumentState#blockVisibleFrom}), sees the catalog as it is when the question is admitted (the rule
 * before it).
 */
public final class LogPrefixAdmission {
    /** A question without a Kafka timestamp: it sees what exists. */
    public static final long UNTIMED = Long.MIN_VALUE;

    private LogPrefixAdmission() {
    }

    /** What a question sees: the first {@code blockCount} blocks, {@code contextLength} tokens. */
    public record View(int blockCount, int contextLength, boolean complete) {
    }

    /** The timestamp of a record as the rule takes it: Flink's record timestamp, or untimed when it has none. */
    public static long timestampOf(Long recordTimestamp) {
        return recordTimestamp == null || recordTimestamp < 0 ? UNTIMED : recordTimestamp;
    }

    /** Whether the version's catalog records when its blocks became visible (false: state from before the rule). */
    static boolean timed(DocumentState state) {
        return state.blockVisibleFrom != null;
    }

    /**
     * Whether nothing that arrives later can change what a question of timestamp {@code t} sees.
     *
     * @param state the catalog; null while no record of the document has arrived (then a timed question waits)
     */
    public static boolean decided(DocumentState state, long t) {
        if (t == UNTIMED) {
            return true;
        }
        if (state == null) {
            return false;
        }
        return !timed(state) || state.complete || state.broken || state.latestTimestamp > t;
    }

    /**
     * What a question of timestamp {@code t} sees of the catalog as it is now (decided or not); null when the
     * version began after the question (its first record is newer): the question does not see the document.
     */
    public static View view(DocumentState state, long t, int blockSize) {
        if (t == UNTIMED || !timed(state)) {
            return new View(state.blockCount, state.emittedTokens, state.complete);
        }
        if (state.firstTimestamp > t) {
            return null;
        }
        int visible = 0;
        while (visible < state.blockCount && state.blockVisibleFrom[visible] <= t) {
            visible++;
        }
        // Only the last block can be short (it goes out with the last chunk), so earlier ones hold b tokens each.
        int tokens = visible == state.blockCount ? state.emittedTokens : visible * blockSize;
        return new View(visible, tokens, state.complete && state.completeVisibleFrom <= t);
    }

    /** A document record of the current version arrived (applied, buffered, duplicate or dropped). */
    static void recordArrived(DocumentState state, long recordTimestamp) {
        if (recordTimestamp != UNTIMED) {
            state.latestTimestamp = Math.max(state.latestTimestamp, recordTimestamp);
        }
    }

    /** The record that arrived last emitted {@code newBlocks} blocks and possibly completed the version. */
    static void blocksEmitted(DocumentState state, int newBlocks, boolean completed) {
        if (!timed(state)) {
            return;
        }
        int before = state.blockVisibleFrom.length;
        state.blockVisibleFrom = Arrays.copyOf(state.blockVisibleFrom, before + newBlocks);
        Arrays.fill(state.blockVisibleFrom, before, before + newBlocks, state.latestTimestamp);
        if (completed) {
            state.completeVisibleFrom = state.latestTimestamp;
        }
    }
}
