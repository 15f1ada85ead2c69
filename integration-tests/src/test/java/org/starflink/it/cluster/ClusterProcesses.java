package org.starflink.it.cluster;

import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.Optional;
import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.TestWatcher;

/**
 * The JUnit side of the cluster fixture's cleanup: what a test class started ({@link KafkaBrokerProcess},
 * {@link FlinkSessionCluster}) is closed after its last test, passed or failed, in reverse order of start; a failed
 * test names the directory with every process's log. (A JVM that dies is covered by {@link ManagedProcess}'s
 * shutdown hook and {@link OrphanGuard}.)
 */
public final class ClusterProcesses implements AfterAllCallback, TestWatcher {
    private final Deque<AutoCloseable> started = new ArrayDeque<>();
    private final Path logs;

    public ClusterProcesses(Path logs) {
        this.logs = logs.toAbsolutePath();
    }

    public Path dir() {
        return logs;
    }

    /** Registers {@code resource} for closing after the test class; returns it. */
    public synchronized <T extends AutoCloseable> T add(T resource) {
        started.push(resource);
        return resource;
    }

    @Override
    public void testFailed(ExtensionContext context, Throwable cause) {
        System.err.println(context.getDisplayName() + " failed; the processes' logs are under " + logs);
    }

    /** An assumption skipped it (e.g. the full matrix's flag is off): nothing failed, so it says skipped and why. */
    @Override
    public void testAborted(ExtensionContext context, Throwable cause) {
        System.err.println(context.getDisplayName() + " skipped: " + cause.getMessage());
    }

    @Override
    public void testDisabled(ExtensionContext context, Optional<String> reason) {
    }

    @Override
    public synchronized void afterAll(ExtensionContext context) {
        RuntimeException failure = null;
        while (!started.isEmpty()) {
            try {
                started.pop().close();
            } catch (Exception e) {
                if (failure == null) {
                    failure = new IllegalStateException("cleanup failed", e);
                } else {
                    failure.addSuppressed(e);
                }
            }
        }
        if (failure != null) {
            throw failure;
        }
    }
}
