package org.starflink.it;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.flink.api.common.functions.MapFunction;
import org.apache.flink.api.common.state.CheckpointListener;

/**
 * Passes records through and throws exactly once per name (JVM-wide, across restarts): after {@code after}
 * records AND after a checkpoint whose whole cut lies after the test {@linkplain #arm armed} it, so that the
 * restore has something to restore and the test knows what it holds.
 */
final class FailOnce<T> implements MapFunction<T, T>, CheckpointListener {
    private static final Map<String, AtomicInteger> FAILURES = new ConcurrentHashMap<>();
    private static final Map<String, AtomicInteger> SEEN = new ConcurrentHashMap<>();
    private static final Map<String, Boolean> CHECKPOINTED = new ConcurrentHashMap<>();
    private static final Map<String, Boolean> ARMED = new ConcurrentHashMap<>();
    private static final Map<String, Long> FIRST_COMPLETED_AFTER_ARMING = new ConcurrentHashMap<>();

    private final String name;
    private final int after;

    /** Armed from the start. */
    FailOnce(String name, int after) {
        this(name, after, true);
    }

    FailOnce(String name, int after, boolean armed) {
        this.name = name;
        this.after = after;
        if (armed) {
            arm(name);
        }
    }

    /** From now on, records count, and the next checkpoint whose cut lies after this call enables the failure. */
    static void arm(String name) {
        SEEN.put(name, new AtomicInteger());
        ARMED.put(name, true);
    }

    /** Waits until the failure is enabled: the next {@code after} records will trigger it. */
    static void awaitReady(String name, java.time.Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (!CHECKPOINTED.getOrDefault(name, false)) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("no checkpoint completed after arming " + name);
            }
            try {
                Thread.sleep(20);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new AssertionError(e);
            }
        }
    }

    @Override
    public T map(T value) {
        int seen = SEEN.computeIfAbsent(name, k -> new AtomicInteger()).incrementAndGet();
        if (seen >= after && CHECKPOINTED.getOrDefault(name, false)
                && FAILURES.computeIfAbsent(name, k -> new AtomicInteger()).compareAndSet(0, 1)) {
            throw new RuntimeException("injected failure " + name + " after " + seen + " records");
        }
        return value;
    }

    @Override
    public void notifyCheckpointComplete(long checkpointId) {
        if (!ARMED.getOrDefault(name, false)) {
            return;
        }
        // A checkpoint completing now may have been triggered before arming; the next one (one checkpoint at a
        // time, Flink's default) is triggered after this completion, so its whole cut lies after arming.
        long first = FIRST_COMPLETED_AFTER_ARMING.computeIfAbsent(name, k -> checkpointId);
        if (checkpointId > first) {
            CHECKPOINTED.put(name, true);
        }
    }

    static int failures(String name) {
        return FAILURES.getOrDefault(name, new AtomicInteger()).get();
    }
}
