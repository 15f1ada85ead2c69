package org.starflink.operators.document;

/**
 * The catalog of one document (keyed state of the {@link DocumentOperator}): which version, how far its chunks
 * have been applied, and what has been emitted. A Flink POJO (public fields, no-argument constructor, no
 * interfaces), so Flink serializes it with its own POJO serializer, never Kryo. The text itself and the
 * out-of-order chunks live in separate states, so that a question reads only this small record.
 *
 * <p>Invariants: chunks 0..nextSeq-1 of {@link #version} are applied, in order; {@link #bufferedChunks} entries
 * wait in the pending-chunk state; blocks 0..blockCount-1 were emitted, covering context tokens
 * [0, emittedTokens), and {@link #emittedHash} is the hash of exactly those tokens.
 */
public class DocumentState {
    public long version;
    /** The next chunk seq to apply. */
    public int nextSeq;
    /** Seq of the chunk marked last, once it has arrived (even if still buffered); -1 before. */
    public int lastSeq = -1;
    /** Number of chunks waiting in the pending-chunk state. */
    public int bufferedChunks;
    /** All chunks up to and including the last one are applied; every block is emitted. */
    public boolean complete;
    /** The tokenization lost its prefix property; questions get an error answer. */
    public boolean broken;
    public int blockCount;
    /** N: context tokens in the emitted blocks. */
    public int emittedTokens;
    public long emittedHash = StableBlockCutter.TokenHash.EMPTY;
    /**
     * Cut at the tokenizer's exact cuts ({@link DocumentOperator#TAIL} holds the rest); false: the whole-text way
     * ({@link DocumentOperator#TEXT}). Chosen when the document starts and kept for its life, so a document whose
     * state was written before exact cuts existed (the field absent, so false) finishes the way it started.
     */
    public boolean exactCuts;
    /**
     * Per emitted block, the Kafka timestamp from which questions see it ({@link LogPrefixAdmission}): the highest
     * record timestamp of this version up to the record whose arrival emitted the block; non-decreasing. Null for a
     * version whose state was written before questions were admitted by timestamp (the field absent): its
     * questions see the catalog as it is when they arrive, as they did then.
     */
    public long[] blockVisibleFrom;
    /** The highest Kafka timestamp among this version's document records so far; Long.MIN_VALUE before any. */
    public long latestTimestamp = Long.MIN_VALUE;
    /** Once complete: the Kafka timestamp from which questions see the version complete. */
    public long completeVisibleFrom = Long.MIN_VALUE;
    /** The Kafka timestamp of this version's first record: questions older than it do not see the version. */
    public long firstTimestamp = Long.MIN_VALUE;

    public DocumentState() {
    }

    static DocumentState start(long version, boolean exactCuts, long firstTimestamp) {
        DocumentState state = new DocumentState();
        state.version = version;
        state.firstTimestamp = firstTimestamp;
        state.exactCuts = exactCuts;
        state.blockVisibleFrom = new long[0];
        return state;
    }

    /** Complete and without a single block: the text was blank. */
    public boolean isEmpty() {
        return complete && !broken && blockCount == 0;
    }

    StableBlockCutter.Progress progress() {
        return new StableBlockCutter.Progress(blockCount, emittedTokens, emittedHash);
    }

    void setProgress(StableBlockCutter.Progress progress) {
        blockCount = progress.blockCount();
        emittedTokens = progress.emittedTokens();
        emittedHash = progress.emittedHash();
    }
}
