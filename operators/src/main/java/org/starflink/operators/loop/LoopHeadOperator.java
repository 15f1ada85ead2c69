package org.starflink.operators.loop;

import java.io.InputStream;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.apache.flink.api.common.functions.RuntimeContext;
import org.apache.flink.api.common.operators.MailboxExecutor;
import org.apache.flink.api.common.typeutils.TypeSerializer;
import org.apache.flink.api.java.functions.KeySelector;
import org.apache.flink.core.memory.DataInputViewStreamWrapper;
import org.apache.flink.core.memory.DataOutputSerializer;
import org.apache.flink.core.memory.DataOutputViewStreamWrapper;
import org.apache.flink.metrics.Counter;
import org.apache.flink.runtime.state.KeyGroupRange;
import org.apache.flink.runtime.state.KeyGroupRangeAssignment;
import org.apache.flink.runtime.state.KeyGroupStatePartitionStreamProvider;
import org.apache.flink.runtime.state.KeyedStateCheckpointOutputStream;
import org.apache.flink.runtime.state.StateInitializationContext;
import org.apache.flink.runtime.state.StateSnapshotContext;
import org.apache.flink.streaming.api.operators.AbstractStreamOperator;
import org.apache.flink.streaming.api.operators.BoundedOneInput;
import org.apache.flink.streaming.api.operators.OneInputStreamOperator;
import org.apache.flink.streaming.api.operators.StreamOperatorParameters;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.util.ResourceGuard;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Loop head: emits the loop's input records and the feedback records that the co-located {@link LoopTailOperator}
 * hands over through the in-JVM {@link LoopChannel}.
 *
 * <p><b>Admission and the in-flight cap.</b> Every input record is admitted into the loop and counted as in
 * flight under its key group until the tail reports its exit. When {@code maxInFlight} records are in flight, the
 * head stops taking input (it yields to its mailbox, which keeps draining feedback and exits) until one leaves:
 * backpressure on the input, never a drop. With a bounded input, {@link #endInput()} likewise waits until the
 * count is zero, so the head never finishes while records are still in the loop.
 *
 * <p><b>Checkpoints</b> (see docs/loop.md). The feedback edge is invisible to Flink, so records on it at a
 * checkpoint are not covered by barrier alignment. At {@link #snapshotState} for checkpoint N the head opens a log
 * for N (holding a lease on N's raw keyed-state stream so that N's asynchronous part waits), copies its in-flight
 * counts, and from then on logs every feedback record and every exit it drains, per key group, until it drains
 * the tail's {@link LoopChannel.Sentinel} N. Then it writes, for each key group it owns: the in-flight count at N
 * minus the exits logged, and the logged feedback records; and releases the lease. On restore, each subtask reads
 * the key groups it now owns (so the loop can be rescaled), restores the counts and re-emits the records.
 *
 * <p>The key group of a record is computed with the loop's key selector; the tail is keyed by the same selector
 * with the same parallelism and max parallelism, so feedback always arrives at the head that owns its key group.
 * The head checks this and fails loudly otherwise.
 */
public final class LoopHeadOperator<T, K> extends AbstractStreamOperator<T>
        implements OneInputStreamOperator<T, T>, BoundedOneInput {

    private static final long serialVersionUID = 1L;
    private static final Logger LOG = LoggerFactory.getLogger(LoopHeadOperator.class);

    /** Version byte at the start of every key group's section in the raw keyed state. */
    static final byte LOG_FORMAT_V1 = 1;

    public static final String METRIC_IN_FLIGHT = "loopRecordsInFlight";
    public static final String METRIC_FEEDBACK = "loopFeedbackRecords";
    public static final String METRIC_LOGGED = "loopLoggedFeedbackRecords";
    public static final String METRIC_REPLAYED = "loopReplayedFeedbackRecords";
    public static final String METRIC_RESTORED_IN_FLIGHT = "loopRestoredRecordsInFlight";
    /** The most records in flight at once since this task (attempt) started: at most {@code maxInFlight}. */
    public static final String METRIC_PEAK_IN_FLIGHT = "loopRecordsInFlightPeak";
    /**
     * Input records the head held at the cap: each stopped its input until a record left the loop (the records
     * behind it wait in the input's buffers, uncounted). Exits often come in batches, so fewer than queued.
     */
    public static final String METRIC_ADMISSIONS_DELAYED = "loopAdmissionsDelayed";
    /** Milliseconds the head's input was stopped at the cap, summed: the backpressure the cap exerts. */
    public static final String METRIC_ADMISSION_WAIT_MS = "loopAdmissionWaitMs";

    private final String loopId;
    private final int maxInFlight;
    private final KeySelector<T, K> keySelector;
    private final TypeSerializer<T> serializer;
    /** Always true in production; false only in the tests' negative control. */
    private final boolean checkpointFeedback;
    private final transient MailboxExecutor mailbox;

    // All of the following are touched only by the task thread (processElement, drain mails, snapshotState).
    private transient KeyGroupRange keyGroups;
    private transient int maxParallelism;
    /** In-flight records per owned key group, indexed by {@code keyGroup - keyGroups.getStartKeyGroup()}. */
    private transient long[] inFlight;
    private transient long totalInFlight;
    private transient long peakInFlight;
    /** Logs of checkpoints whose sentinel has not been drained yet, by checkpoint id. */
    private transient TreeMap<Long, PendingLog> pendingLogs;
    /** Feedback records restored from a checkpoint, emitted in {@link #open()}. */
    private transient List<T> toReplay;
    private transient LoopChannel channel;
    private transient Counter feedbackCounter;
    private transient Counter loggedCounter;
    private transient Counter replayedCounter;
    private transient Counter admissionsDelayed;
    private transient Counter admissionWaitMs;

    LoopHeadOperator(StreamOperatorParameters<T> parameters, String loopId, int maxInFlight,
            KeySelector<T, K> keySelector, TypeSerializer<T> serializer, boolean checkpointFeedback) {
        super(parameters);
        this.checkpointFeedback = checkpointFeedback;
        this.loopId = loopId;
        this.maxInFlight = maxInFlight;
        this.keySelector = keySelector;
        this.serializer = serializer;
        this.mailbox = parameters.getMailboxExecutor();
    }

    static LoopChannel.Key channelKey(String loopId, RuntimeContext context) {
        return new LoopChannel.Key(loopId, context.getJobInfo().getJobId().toHexString(),
                context.getTaskInfo().getIndexOfThisSubtask(), context.getTaskInfo().getAttemptNumber());
    }

    @Override
    public void initializeState(StateInitializationContext context) throws Exception {
        super.initializeState(context);
        // The same computation Flink uses to assign key groups to this subtask's keyed state.
        maxParallelism = getRuntimeContext().getTaskInfo().getMaxNumberOfParallelSubtasks();
        keyGroups = KeyGroupRangeAssignment.computeKeyGroupRangeForOperatorIndex(maxParallelism,
                getRuntimeContext().getTaskInfo().getNumberOfParallelSubtasks(),
                getRuntimeContext().getTaskInfo().getIndexOfThisSubtask());
        inFlight = new long[keyGroups.getNumberOfKeyGroups()];
        totalInFlight = 0;
        pendingLogs = new TreeMap<>();
        toReplay = new ArrayList<>();
        // Flink hands this subtask exactly the key groups it owns now, whatever the parallelism was when written.
        for (KeyGroupStatePartitionStreamProvider partition : context.getRawKeyedStateInputs()) {
            int keyGroup = partition.getKeyGroupId();
            try (InputStream in = partition.getStream()) {
                DataInputViewStreamWrapper view = new DataInputViewStreamWrapper(in);
                byte format = view.readByte();
                if (format != LOG_FORMAT_V1) {
                    throw new IllegalStateException("feedback loop '" + loopId + "': unknown log format " + format
                            + " in key group " + keyGroup);
                }
                long count = view.readLong();
                int records = view.readInt();
                inFlight[keyGroup - keyGroups.getStartKeyGroup()] += count;
                totalInFlight += count;
                for (int i = 0; i < records; i++) {
                    toReplay.add(serializer.deserialize(view));
                }
            }
        }
        if (context.isRestored()) {
            LOG.info("Feedback loop '{}' head {} restored {} records in flight over key groups {}, replays {}",
                    loopId, getRuntimeContext().getTaskInfo().getIndexOfThisSubtask(), totalInFlight, keyGroups,
                    toReplay.size());
        }
    }

    /**
     * Raw keyed state has one user per operator. Without this, Flink's timer service would try to read our log as
     * legacy timers on restore.
     */
    @Override
    protected boolean isUsingCustomRawKeyedState() {
        return true;
    }

    @Override
    public void open() throws Exception {
        super.open();
        getMetricGroup().gauge(METRIC_IN_FLIGHT, () -> totalInFlight);
        feedbackCounter = getMetricGroup().counter(METRIC_FEEDBACK);
        loggedCounter = getMetricGroup().counter(METRIC_LOGGED);
        replayedCounter = getMetricGroup().counter(METRIC_REPLAYED);
        getMetricGroup().counter(METRIC_RESTORED_IN_FLIGHT).inc(totalInFlight);
        peakInFlight = totalInFlight;
        getMetricGroup().gauge(METRIC_PEAK_IN_FLIGHT, () -> peakInFlight);
        admissionsDelayed = getMetricGroup().counter(METRIC_ADMISSIONS_DELAYED);
        admissionWaitMs = getMetricGroup().counter(METRIC_ADMISSION_WAIT_MS);

        // Replayed records were on the feedback edge at the checkpoint; they go out before anything new.
        for (T record : toReplay) {
            output.collect(new StreamRecord<>(record));
        }
        replayedCounter.inc(toReplay.size());
        toReplay = null;

        channel = LoopChannel.acquire(channelKey(loopId, getRuntimeContext()));
        channel.registerConsumer(mailbox, this::onMessage);
    }

    /** An input record enters the loop, once fewer than {@code maxInFlight} records are in it. */
    @Override
    public void processElement(StreamRecord<T> element) throws Exception {
        // Backpressure: while at the cap, run other mails (feedback drains bring exits) instead of taking input.
        if (totalInFlight >= maxInFlight) {
            long waitingSince = System.nanoTime();
            while (totalInFlight >= maxInFlight) {
                mailbox.yield();
            }
            admissionsDelayed.inc();
            admissionWaitMs.inc((System.nanoTime() - waitingSince) / 1_000_000);
        }
        int index = keyGroupIndex(keySelector.getKey(element.getValue()));
        inFlight[index]++;
        totalInFlight++;
        peakInFlight = Math.max(peakInFlight, totalInFlight);
        output.collect(element);
    }

    /** The input has ended: stay alive until everything admitted has left the loop. */
    @Override
    public void endInput() throws Exception {
        if (totalInFlight > 0) {
            LOG.info("Feedback loop '{}' input ended with {} records in flight; waiting for them", loopId,
                    totalInFlight);
        }
        while (totalInFlight > 0) {
            mailbox.yield();
        }
    }

    @SuppressWarnings("unchecked")
    private void onMessage(LoopChannel.Message message) throws Exception {
        if (message instanceof LoopChannel.Feedback feedback) {
            T record = (T) feedback.record();
            int index = keyGroupIndex(keySelector.getKey(record));
            for (PendingLog log : pendingLogs.values()) {
                log.logFeedback(index, record);
                loggedCounter.inc();
            }
            feedbackCounter.inc();
            output.collect(new StreamRecord<>(record));
        } else if (message instanceof LoopChannel.Exit exit) {
            int index = keyGroupIndex((K) exit.key());
            if (inFlight[index] <= 0) {
                throw new IllegalStateException("feedback loop '" + loopId + "': exit for key " + exit.key()
                        + " but no record of its key group is in flight (more exits than admitted records?)");
            }
            inFlight[index]--;
            totalInFlight--;
            for (PendingLog log : pendingLogs.values()) {
                log.logExit(index);
            }
        } else if (message instanceof LoopChannel.Sentinel sentinel) {
            // Everything the tail sent before its barrier N has been drained: logs up to N are complete.
            Map<Long, PendingLog> complete = pendingLogs.headMap(sentinel.checkpointId(), true);
            for (PendingLog log : complete.values()) {
                log.writeAndRelease();
            }
            complete.clear();
        }
    }

    private int keyGroupIndex(K key) {
        int keyGroup = KeyGroupRangeAssignment.assignToKeyGroup(key, maxParallelism);
        if (!keyGroups.contains(keyGroup)) {
            throw new IllegalStateException("feedback loop '" + loopId + "': key " + key + " is in key group "
                    + keyGroup + ", which head subtask " + getRuntimeContext().getTaskInfo().getIndexOfThisSubtask()
                    + " does not own " + keyGroups + ". Loop head and tail must have the same parallelism and max "
                    + "parallelism, and feedback/exits must keep the key of the record they continue.");
        }
        return keyGroup - keyGroups.getStartKeyGroup();
    }

    @Override
    public void snapshotState(StateSnapshotContext context) throws Exception {
        super.snapshotState(context);
        if (!checkpointFeedback) {
            return;
        }
        pendingLogs.put(context.getCheckpointId(),
                new PendingLog(context.getCheckpointId(), context.getRawKeyedOperatorStateOutput(), inFlight.clone()));
    }

    @Override
    public void notifyCheckpointAborted(long checkpointId) throws Exception {
        super.notifyCheckpointAborted(checkpointId);
        // An aborted checkpoint's sentinel may never come; do not hold its stream (or memory) any longer.
        PendingLog log = pendingLogs.remove(checkpointId);
        if (log != null) {
            log.discard();
        }
    }

    @Override
    public void close() throws Exception {
        try {
            if (pendingLogs != null) {
                for (Iterator<PendingLog> it = pendingLogs.values().iterator(); it.hasNext(); ) {
                    it.next().discard();
                    it.remove();
                }
            }
            if (channel != null) {
                channel.unregisterConsumer();
                LoopChannel.release(channel);
                channel = null;
            }
        } finally {
            super.close();
        }
    }

    /** What checkpoint N must add to the head's state: built while N's sentinel is on its way. */
    private final class PendingLog {
        private final long checkpointId;
        private final KeyedStateCheckpointOutputStream out;
        private final ResourceGuard.Lease lease;
        /** In-flight counts at the snapshot, minus exits drained since. */
        private final long[] inFlightAtCheckpoint;
        /** Serialized feedback records per key group index; null until the first one. */
        private final DataOutputSerializer[] records;
        private final int[] recordCounts;

        PendingLog(long checkpointId, KeyedStateCheckpointOutputStream out, long[] inFlightAtSnapshot)
                throws Exception {
            this.checkpointId = checkpointId;
            this.out = out;
            // Holds back closeAndGetHandle() in the checkpoint's asynchronous part until we release it.
            this.lease = out.acquireLease();
            this.inFlightAtCheckpoint = inFlightAtSnapshot;
            this.records = new DataOutputSerializer[inFlightAtSnapshot.length];
            this.recordCounts = new int[inFlightAtSnapshot.length];
        }

        void logFeedback(int index, T record) throws Exception {
            if (records[index] == null) {
                records[index] = new DataOutputSerializer(256);
            }
            serializer.serialize(record, records[index]);
            recordCounts[index]++;
        }

        void logExit(int index) {
            // Aligned checkpoints guarantee that an exit drained before sentinel N belongs to a record admitted
            // before the head's snapshot N (its whole trip happened before the barrier reached the tail).
            if (--inFlightAtCheckpoint[index] < 0) {
                throw new IllegalStateException("feedback loop '" + loopId + "': checkpoint " + checkpointId
                        + " saw an exit for a record admitted after it; unaligned checkpoints are not supported");
            }
        }

        void writeAndRelease() throws Exception {
            try {
                DataOutputViewStreamWrapper view = new DataOutputViewStreamWrapper(out);
                // Every owned key group gets a section (even when empty): restore then never meets a key group
                // without an offset, and a rescaled subtask gets each group's count.
                for (int index = 0; index < inFlightAtCheckpoint.length; index++) {
                    out.startNewKeyGroup(keyGroups.getStartKeyGroup() + index);
                    view.writeByte(LOG_FORMAT_V1);
                    view.writeLong(inFlightAtCheckpoint[index]);
                    view.writeInt(recordCounts[index]);
                    if (records[index] != null) {
                        view.write(records[index].getSharedBuffer(), 0, records[index].length());
                    }
                }
                view.flush();
            } finally {
                lease.close();
            }
        }

        void discard() {
            lease.close();
        }
    }
}
