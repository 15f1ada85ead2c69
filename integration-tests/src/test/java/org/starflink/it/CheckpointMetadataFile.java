package org.starflink.it;

import java.io.DataInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collection;
import org.apache.flink.runtime.checkpoint.Checkpoints;
import org.apache.flink.runtime.checkpoint.OperatorState;
import org.apache.flink.runtime.checkpoint.metadata.CheckpointMetadata;

/**
 * A retained checkpoint's or savepoint's {@code _metadata}, read and written as a rewritten copy next to it (relative
 * file handles resolve against that directory; Flink restores from a metadata file as it does from its directory):
 * what the negative controls that restore a deliberately damaged state share.
 */
final class CheckpointMetadataFile {
    private CheckpointMetadataFile() {
    }

    static CheckpointMetadata load(Path dir) throws IOException {
        try (InputStream in = Files.newInputStream(dir.resolve("_metadata"))) {
            return Checkpoints.loadCheckpointMetadata(new DataInputStream(in),
                    CheckpointMetadataFile.class.getClassLoader(), dir.toUri().toString());
        }
    }

    /** {@code metadata} with {@code operators} instead of its own, as {@code dir/name}; returns the copy's URI. */
    static String writeCopy(Path dir, String name, CheckpointMetadata metadata, Collection<OperatorState> operators)
            throws IOException {
        Path copy = dir.resolve(name);
        try (OutputStream out = Files.newOutputStream(copy)) {
            Checkpoints.storeCheckpointMetadata(new CheckpointMetadata(metadata.getCheckpointId(), operators,
                    metadata.getMasterStates(), metadata.getCheckpointProperties()), out);
        }
        return copy.toUri().toString();
    }
}
