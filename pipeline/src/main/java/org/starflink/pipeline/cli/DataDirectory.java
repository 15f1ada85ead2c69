package org.starflink.pipeline.cli;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Comparator;
import java.util.Optional;
import java.util.Properties;
import java.util.stream.Stream;

/**
 * Where {@code starflink run} keeps what it was given, so that a clean stop or a kill -9 loses nothing:
 *
 * <pre>
 *  DATA_DIR/
 *    kafka/          the embedded broker's log: topics, records, consumer offsets
 *    checkpoints/    Flink's checkpoints (JOB_ID/chk-N), kept when the job stops; the newest is restored
 *    run.properties  the broker's ports: the next run comes back on the same address
 *    log/            the job's log starflink.log (also in the Flink Web UI's log tabs) and RocksDB's logs
 *    lock            held while a run uses the directory
 * </pre>
 *
 * A second run on the same directory is refused while the first holds the lock (the operating system releases
 * it when the process dies, also after kill -9).
 */
final class DataDirectory implements AutoCloseable {
    static final String BROKER_PORT = "kafka.port";
    static final String CONTROLLER_PORT = "kafka.controller.port";

    private final Path root;
    private final FileChannel lockChannel;
    private final FileLock lock;

    private DataDirectory(Path root, FileChannel lockChannel, FileLock lock) {
        this.root = root;
        this.lockChannel = lockChannel;
        this.lock = lock;
    }

    /**
     * Takes the directory (created if needed) for this process.
     *
     * @param fresh start empty: delete the broker's data, the checkpoints and the saved ports first
     * @throws StarflinkCli.Failure with {@link StarflinkCli#EXIT_CONFLICT} if another run holds it
     */
    static DataDirectory open(Path root, boolean fresh) {
        Path dir = root.toAbsolutePath().normalize();
        FileChannel channel = null;
        try {
            Files.createDirectories(dir);
            channel = FileChannel.open(dir.resolve("lock"), StandardOpenOption.CREATE, StandardOpenOption.WRITE);
            FileLock lock = tryLock(channel);
            if (lock == null) {
                channel.close();
                String address = savedPort(dir, BROKER_PORT).map(p -> " (its broker: 127.0.0.1:" + p + ")").orElse("");
                throw new StarflinkCli.Failure(StarflinkCli.EXIT_CONFLICT, "another starflink run is using " + dir
                        + address + "; stop it first, or give this one another --data-dir");
            }
            DataDirectory data = new DataDirectory(dir, channel, lock);
            if (fresh) {
                deleteRecursively(data.kafka());
                deleteRecursively(data.checkpoints());
                Files.deleteIfExists(dir.resolve("run.properties"));
            }
            return data;
        } catch (IOException e) {
            closeQuietly(channel);
            throw new StarflinkCli.Failure(StarflinkCli.EXIT_INPUT_ERROR, "cannot use data directory " + dir + ": "
                    + e.getMessage());
        }
    }

    private static FileLock tryLock(FileChannel channel) throws IOException {
        try {
            return channel.tryLock();
        } catch (OverlappingFileLockException e) {
            return null; // held by this JVM already
        }
    }

    Path root() {
        return root;
    }

    Path kafka() {
        return root.resolve("kafka");
    }

    Path checkpoints() {
        return root.resolve("checkpoints");
    }

    Path logFile() {
        return root.resolve("log").resolve("starflink.log");
    }

    Optional<Integer> savedPort(String key) {
        return savedPort(root, key);
    }

    private static Optional<Integer> savedPort(Path root, String key) {
        Path file = root.resolve("run.properties");
        if (!Files.exists(file)) {
            return Optional.empty();
        }
        Properties properties = new Properties();
        try (InputStream in = Files.newInputStream(file)) {
            properties.load(in);
        } catch (IOException e) {
            return Optional.empty();
        }
        return Optional.ofNullable(properties.getProperty(key)).map(Integer::valueOf);
    }

    void savePorts(int brokerPort, int controllerPort) {
        Properties properties = new Properties();
        properties.setProperty(BROKER_PORT, String.valueOf(brokerPort));
        properties.setProperty(CONTROLLER_PORT, String.valueOf(controllerPort));
        try (OutputStream out = Files.newOutputStream(root.resolve("run.properties"))) {
            properties.store(out, "the embedded broker's ports, reused by the next starflink run");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * The newest completed checkpoint of any earlier run: the {@code chk-N} folder whose {@code _metadata} (written
     * last, when the checkpoint completes) is the most recent.
     */
    Optional<Path> latestCheckpoint() {
        if (!Files.isDirectory(checkpoints())) {
            return Optional.empty();
        }
        try (Stream<Path> files = Files.find(checkpoints(), 3, (path, attributes) ->
                path.getFileName().toString().equals("_metadata") && attributes.isRegularFile()
                        && path.getParent().getFileName().toString().startsWith("chk-"))) {
            return files.max(Comparator.comparing(DataDirectory::modified)).map(Path::getParent);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * Deletes the checkpoints of earlier runs except the job folder holding {@code keep}: the new job restores
     * from it without claiming it (Flink's NO_CLAIM mode: its own first checkpoint is a full one), so older job
     * folders are no longer needed.
     */
    void pruneCheckpointsExcept(Path keep) {
        Path keepJob = keep.getParent();
        try (Stream<Path> jobs = Files.list(checkpoints())) {
            for (Path job : jobs.toList()) {
                if (!job.equals(keepJob)) {
                    deleteRecursively(job);
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @Override
    public void close() {
        try {
            lock.release();
        } catch (IOException e) {
            // the process is ending; the OS releases it anyway
        }
        closeQuietly(lockChannel);
    }

    private static long modified(Path path) {
        try {
            return Files.getLastModifiedTime(path).toMillis();
        } catch (IOException e) {
            return Long.MIN_VALUE;
        }
    }

    private static void closeQuietly(FileChannel channel) {
        if (channel != null) {
            try {
                channel.close();
            } catch (IOException ignored) {
                // nothing to do
            }
        }
    }

    static void deleteRecursively(Path dir) throws IOException {
        if (!Files.exists(dir)) {
            return;
        }
        try (Stream<Path> paths = Files.walk(dir)) {
            for (Path path : paths.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(path);
            }
        }
    }
}
