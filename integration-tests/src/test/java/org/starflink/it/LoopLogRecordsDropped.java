package org.starflink.it;

import java.io.IOException;
import java.net.URI;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.apache.flink.api.java.tuple.Tuple2;
import org.apache.flink.core.fs.FSDataInputStream;
import org.apache.flink.core.memory.DataInputViewStreamWrapper;
import org.apache.flink.core.memory.DataOutputSerializer;
import org.apache.flink.runtime.checkpoint.OperatorState;
import org.apache.flink.runtime.checkpoint.OperatorSubtaskState;
import org.apache.flink.runtime.checkpoint.StateObjectCollection;
import org.apache.flink.runtime.checkpoint.metadata.CheckpointMetadata;
import org.apache.flink.runtime.state.KeyGroupRangeOffsets;
import org.apache.flink.runtime.state.KeyGroupsStateHandle;
import org.apache.flink.runtime.state.KeyedStateHandle;
import org.apache.flink.runtime.state.memory.ByteStreamStateHandle;

/**
 * For the negative control of the loop's log: a copy of a retained checkpoint's metadata in which the loop head's
 * log keeps its in-flight counts but loses its records (the feedback records that were on the loop's in-JVM edge at
 * the cut). Everything else of the checkpoint, the loop head's counts included, is restored as it was. The log is
 * the loop head's raw keyed state, per key group {@code [format byte][in-flight count: long][n: int][n records]}
 * (LoopHeadOperator); each key group's section is rewritten with n = 0.
 *
 * <p>The copy is written next to the original {@code _metadata} (relative file handles resolve against that
 * directory), and Flink restores from a metadata file as it does from its directory.
 */
final class LoopLogRecordsDropped {
    /** The new metadata file's URI, and how many logged records it dropped. */
    record Result(String metadata, int droppedRecords, long inFlightKept) {
    }

    private LoopLogRecordsDropped() {
    }

    static Result rewrite(String checkpointDir, String loopHeadUid) throws IOException {
        Path dir = Path.of(URI.create(checkpointDir));
        CheckpointMetadata metadata = CheckpointMetadataFile.load(dir);
        // The loop head is the job's only operator with raw keyed state (RocksDB keeps timers in RocksDB).
        List<OperatorState> withRawKeyedState = metadata.getOperatorStates().stream()
                .filter(op -> op.getStates().stream().anyMatch(s -> !s.getRawKeyedState().isEmpty())).toList();
        if (withRawKeyedState.size() != 1 || withRawKeyedState.get(0).getOperatorUid()
                .filter(uid -> !uid.equals(loopHeadUid)).isPresent()) {
            throw new AssertionError("expected the loop head (" + loopHeadUid + ") to be the one operator with raw "
                    + "keyed state, found " + withRawKeyedState);
        }
        OperatorState head = withRawKeyedState.get(0);
        int dropped = 0;
        long inFlight = 0;
        for (Map.Entry<Integer, OperatorSubtaskState> subtask : Map.copyOf(head.getSubtaskStates()).entrySet()) {
            List<KeyedStateHandle> rewritten = new ArrayList<>();
            for (KeyedStateHandle handle : subtask.getValue().getRawKeyedState()) {
                KeyGroupsStateHandle log = (KeyGroupsStateHandle) handle;
                KeyGroupRangeOffsets offsets = new KeyGroupRangeOffsets(log.getKeyGroupRange());
                DataOutputSerializer out = new DataOutputSerializer(256);
                try (FSDataInputStream in = log.openInputStream()) {
                    for (Tuple2<Integer, Long> keyGroup : log.getGroupRangeOffsets()) {
                        in.seek(keyGroup.f1);
                        DataInputViewStreamWrapper view = new DataInputViewStreamWrapper(in);
                        byte format = view.readByte();
                        long count = view.readLong();
                        dropped += view.readInt();
                        inFlight += count;
                        offsets.setKeyGroupOffset(keyGroup.f0, out.length());
                        out.writeByte(format);
                        out.writeLong(count);
                        out.writeInt(0); // no records
                    }
                }
                rewritten.add(new KeyGroupsStateHandle(offsets, new ByteStreamStateHandle(
                        "loop-log-without-records-" + subtask.getKey(), out.getCopyOfBuffer())));
            }
            head.putState(subtask.getKey(), subtask.getValue().toBuilder()
                    .setRawKeyedState(new StateObjectCollection<>(rewritten)).build());
        }
        return new Result(CheckpointMetadataFile.writeCopy(dir, "_metadata-loop-log-without-records", metadata,
                metadata.getOperatorStates()), dropped, inFlight);
    }
}
