package org.starflink.it;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.flink.api.common.functions.MapFunction;
import org.apache.flink.api.common.state.CheckpointListener;

/**
 * Passes records through and throws exactly once per name (JVM-wide, across restarts): after {@code after}
 * records AND after at least one checkpoint completed, so that the restore has something to restore.
 */
final class FailOnce<T> implements MapFunction<T, T>, CheckpointListener {
    private static final Map<String, AtomicInteger> FAILURES = new ConcurrentHashMap<>();
    private static final Map<String, AtomicInteger> SEEN = new ConcurrentHashMap<>();
    private static final Map<String, Boolean> CHECKPOINTED = new ConcurrentHashMap<>();

    private final String name;
    private final int after;

    FailOnce(String name, int after) {
        this.name = name;
        this.after = after;
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
        CHECKPOINTED.put(name, true);
    }

    static int failures(String name) {
        return FAILURES.getOrDefault(name, new AtomicInteger()).get();
    }
}
