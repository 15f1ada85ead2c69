package org.starflink.it;

import java.io.IOException;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import org.apache.flink.runtime.checkpoint.OperatorState;
import org.apache.flink.runtime.checkpoint.metadata.CheckpointMetadata;
import org.apache.flink.runtime.jobgraph.OperatorID;
import org.apache.flink.shaded.guava33.com.google.common.hash.Hashing;

/**
 * For the negative controls on the cluster: a copy of a savepoint's or retained checkpoint's metadata without one
 * operator's state, so that a job restored from it starts that operator empty and everything else as it was (as if
 * that operator's state were not restored). The operator is found by its uid's operator id (Flink hashes a
 * user-set uid with murmur3-128, seed 0, as {@code StreamGraphHasherV2} does).
 *
 * <p>The copy is written next to the original {@code _metadata} (relative file handles resolve against that
 * directory), and Flink restores from a metadata file as it does from its directory.
 */
final class OperatorStateDropped {
    private OperatorStateDropped() {
    }

    /** Writes the copy; returns its URI. */
    static String rewrite(String savepointOrCheckpoint, String uid) throws IOException {
        Path dir = Path.of(URI.create(savepointOrCheckpoint));
        CheckpointMetadata metadata = CheckpointMetadataFile.load(dir);
        OperatorID id = new OperatorID(Hashing.murmur3_128(0).newHasher().putString(uid, StandardCharsets.UTF_8)
                .hash().asBytes());
        List<OperatorState> kept = metadata.getOperatorStates().stream()
                .filter(op -> !op.getOperatorID().equals(id)).toList();
        if (kept.size() != metadata.getOperatorStates().size() - 1) {
            throw new AssertionError("no operator state of " + uid + " (" + id + ") in " + dir);
        }
        return CheckpointMetadataFile.writeCopy(dir, "_metadata-without-" + uid, metadata, kept);
    }
}
