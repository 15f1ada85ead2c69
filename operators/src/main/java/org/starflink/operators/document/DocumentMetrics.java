package org.starflink.operators.document;

import org.apache.flink.metrics.Counter;
import org.apache.flink.metrics.MetricGroup;

/** The counters of the {@link DocumentOperator}, in the group starflink.document. Names are stable (dashboards). */
public final class DocumentMetrics {
    public static final String GROUP = "starflink";
    public static final String SUBGROUP = "document";

    public static final String CHUNKS_APPLIED = "chunksApplied";
    public static final String CHUNKS_DUPLICATE = "chunksDuplicate";
    public static final String CHUNKS_OUT_OF_ORDER_BUFFERED = "chunksOutOfOrderBuffered";
    /** Chunks, and deletes, of a version older than the document's current one: ignored. */
    public static final String CHUNKS_STALE_VERSION = "chunksStaleVersion";
    /** Chunks thrown away for another reason: waiting room full, beyond the last chunk, broken. */
    public static final String CHUNKS_DROPPED = "chunksDropped";
    public static final String BLOCKS_EMITTED = "blocksEmitted";
    /** DROP commands sent (a newer version or a delete). */
    public static final String BLOCKS_DROPPED = "blocksDropped";
    /** Documents whose re-tokenization stopped starting with the tokens already emitted. */
    public static final String DOCUMENTS_BROKEN = "documentsBroken";
    public static final String QUESTIONS_ACCEPTED = "questionsAccepted";
    public static final String QUESTIONS_REJECTED = "questionsRejected";
    /** Questions that waited for their document to be complete (then accepted, or rejected on their timeout). */
    public static final String QUESTIONS_WAITED = "questionsWaited";
    /** Questions held until their document's log passed their timestamp (LogPrefixAdmission). */
    public static final String QUESTIONS_HELD_FOR_PREFIX = "questionsHeldForPrefix";
    /** Of those, the ones admitted when their prefix wait ran out: the answer may depend on the interleaving. */
    public static final String QUESTIONS_PREFIX_WAIT_EXPIRED = "questionsPrefixWaitExpired";

    final Counter chunksApplied;
    final Counter chunksDuplicate;
    final Counter chunksOutOfOrderBuffered;
    final Counter chunksStaleVersion;
    final Counter chunksDropped;
    final Counter blocksEmitted;
    final Counter blocksDropped;
    final Counter documentsBroken;
    final Counter questionsAccepted;
    final Counter questionsRejected;
    final Counter questionsWaited;
    final Counter questionsHeldForPrefix;
    final Counter questionsPrefixWaitExpired;

    DocumentMetrics(MetricGroup operatorGroup) {
        MetricGroup group = operatorGroup.addGroup(GROUP).addGroup(SUBGROUP);
        chunksApplied = group.counter(CHUNKS_APPLIED);
        chunksDuplicate = group.counter(CHUNKS_DUPLICATE);
        chunksOutOfOrderBuffered = group.counter(CHUNKS_OUT_OF_ORDER_BUFFERED);
        chunksStaleVersion = group.counter(CHUNKS_STALE_VERSION);
        chunksDropped = group.counter(CHUNKS_DROPPED);
        blocksEmitted = group.counter(BLOCKS_EMITTED);
        blocksDropped = group.counter(BLOCKS_DROPPED);
        documentsBroken = group.counter(DOCUMENTS_BROKEN);
        questionsAccepted = group.counter(QUESTIONS_ACCEPTED);
        questionsRejected = group.counter(QUESTIONS_REJECTED);
        questionsWaited = group.counter(QUESTIONS_WAITED);
        questionsHeldForPrefix = group.counter(QUESTIONS_HELD_FOR_PREFIX);
        questionsPrefixWaitExpired = group.counter(QUESTIONS_PREFIX_WAIT_EXPIRED);
    }
}
