package org.starflink.it;

import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.apache.flink.api.common.functions.MapFunction;
import org.apache.flink.runtime.state.FunctionInitializationContext;
import org.apache.flink.runtime.state.FunctionSnapshotContext;
import org.apache.flink.streaming.api.checkpoint.CheckpointedFunction;

/**
 * Passes records through. Once {@linkplain #arm armed}, the first subtask to snapshot a checkpoint holds it (its
 * synchronous snapshot waits) until the test {@linkplain #release releases} it, and then either lets the
 * checkpoint complete or throws: the injected failure. While it holds, no later checkpoint can complete (one checkpoint at a time), so the test knows exactly
 * what the restore will hold: nothing the sources read after the held checkpoint's barrier, i.e. nothing sent
 * after {@link #awaitHolding} returned.
 */
final class HoldACheckpoint<T> implements MapFunction<T, T>, CheckpointedFunction {
    private static final Map<String, CountDownLatch> HOLDING = new ConcurrentHashMap<>();
    private static final Map<String, CountDownLatch> RELEASED = new ConcurrentHashMap<>();
    private static final Map<String, CountDownLatch> RESTORED = new ConcurrentHashMap<>();

    private final String name;
    private final boolean failWhenReleased;

    HoldACheckpoint(String name, boolean failWhenReleased) {
        this.name = name;
        this.failWhenReleased = failWhenReleased;
    }

    static void arm(String name) {
        HOLDING.put(name, new CountDownLatch(1));
        RELEASED.put(name, new CountDownLatch(1));
        RESTORED.put(name, new CountDownLatch(1));
    }

    /** Returns once a checkpoint is held: records sent from now on are in no checkpoint until the failure. */
    static void awaitHolding(String name, Duration timeout) throws InterruptedException {
        if (!HOLDING.get(name).await(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
            throw new AssertionError("no checkpoint reached " + name + " after arming");
        }
    }

    /**
     * Lets the held snapshot go on: the checkpoint completes, or (failing) the snapshot throws and the job fails
     * over to the checkpoint before it.
     */
    static void release(String name) {
        RELEASED.get(name).countDown();
    }

    /** After a failing release: returns once the job restored (the failed attempt's tasks are gone by then). */
    static void awaitRestored(String name, Duration timeout) throws InterruptedException {
        if (!RESTORED.get(name).await(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
            throw new AssertionError("the job did not restore after " + name);
        }
    }

    static boolean fired(String name) {
        CountDownLatch holding = HOLDING.get(name);
        return holding != null && holding.getCount() == 0;
    }

    @Override
    public T map(T value) {
        return value;
    }

    @Override
    public void snapshotState(FunctionSnapshotContext context) throws Exception {
        CountDownLatch holding = HOLDING.get(name);
        if (holding == null) {
            return;
        }
        synchronized (holding) { // only the first subtask to get here holds
            if (holding.getCount() == 0) {
                return;
            }
            holding.countDown();
        }
        if (!RELEASED.get(name).await(2, TimeUnit.MINUTES)) {
            throw new IllegalStateException(name + " was never released");
        }
        if (failWhenReleased) {
            throw new RuntimeException("injected failure " + name + " while holding checkpoint "
                    + context.getCheckpointId());
        }
    }

    @Override
    public void initializeState(FunctionInitializationContext context) {
        CountDownLatch restored = RESTORED.get(name);
        if (restored != null && context.isRestored() && fired(name)) {
            restored.countDown();
        }
    }
}
