package org.starflink.operators.loop;

import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.flink.api.common.operators.MailboxExecutor;
import org.apache.flink.util.function.ThrowingConsumer;

/**
 * The in-JVM edge from loop tail subtask i to loop head subtask i (the two are co-located, so they share a JVM).
 *
 * <p>Many producers (the tail's task thread), one consumer (the head's task thread). The consumer never polls from
 * another thread: {@link #put} schedules a "drain" mail on the head's mailbox, and the drain runs on the head's task
 * thread, so the head's fields need no locks. The queue itself is unbounded; the head bounds what can be in it by
 * capping the records it admits into the loop (see {@link LoopHeadOperator}).
 *
 * <p>Channels live in a JVM-wide registry keyed by {@link Key}. Head and tail each {@link #acquire} the channel
 * when they open and {@link #release} it when they close; the last release removes it, so failed attempts leave
 * nothing behind. Whichever side opens first creates it: a tail may put before its head has registered, and those
 * messages wait in the queue.
 */
final class LoopChannel {

    /**
     * Identity of one channel. The attempt number keeps a restarted head from draining what a dying tail of the
     * previous attempt still puts; the job id keeps two jobs in one JVM (a MiniCluster, tests) apart.
     */
    record Key(String loopId, String jobId, int subtask, int attempt) {}

    /** What travels from tail to head. */
    sealed interface Message permits Feedback, Exit, Sentinel {}

    /** A record that goes around the loop once more. */
    record Feedback(Object record) implements Message {}

    /** One record admitted by the head has left the loop; {@code key} is its key. */
    record Exit(Object key) implements Message {}

    /**
     * Put by the tail in {@code prepareSnapshotPreBarrier(checkpointId)}: everything before it in the queue was
     * sent by the tail before checkpoint {@code checkpointId}'s barrier, so the head must log it for that checkpoint.
     */
    record Sentinel(long checkpointId) implements Message {}

    /** At most this many messages per drain mail, so that input, timers and checkpoints interleave with feedback. */
    static final int MAX_DRAIN_BATCH = 1024;

    private static final Map<Key, LoopChannel> REGISTRY = new ConcurrentHashMap<>();

    private final Key key;
    private final ConcurrentLinkedQueue<Message> queue = new ConcurrentLinkedQueue<>();
    private final AtomicBoolean drainScheduled = new AtomicBoolean();
    private int references; // guarded by REGISTRY's compute()
    private volatile MailboxExecutor consumerMailbox;
    private volatile ThrowingConsumer<Message, Exception> consumer;

    private LoopChannel(Key key) {
        this.key = key;
    }

    static LoopChannel acquire(Key key) {
        return REGISTRY.compute(key, (k, existing) -> {
            LoopChannel channel = existing != null ? existing : new LoopChannel(k);
            channel.references++;
            return channel;
        });
    }

    static void release(LoopChannel channel) {
        REGISTRY.computeIfPresent(channel.key, (k, existing) -> {
            if (existing != channel) {
                return existing;
            }
            return --existing.references > 0 ? existing : null;
        });
    }

    /** Channels alive in this JVM (diagnostics and tests: must drop to zero once jobs end). */
    static int openChannels() {
        return REGISTRY.size();
    }

    /** Called by the tail's task thread. Never blocks. */
    void put(Message message) {
        queue.add(Objects.requireNonNull(message));
        scheduleDrain();
    }

    /** Called once by the head, on its task thread, when it opens. */
    void registerConsumer(MailboxExecutor mailbox, ThrowingConsumer<Message, Exception> handler) {
        this.consumer = handler;
        this.consumerMailbox = mailbox;
        scheduleDrain(); // the tail may have put before the head registered
    }

    void unregisterConsumer() {
        consumerMailbox = null;
        consumer = null;
    }

    private void scheduleDrain() {
        MailboxExecutor mailbox = consumerMailbox;
        if (mailbox == null || !drainScheduled.compareAndSet(false, true)) {
            return;
        }
        try {
            mailbox.execute(this::drain, "feedback-loop drain %s", key);
        } catch (RejectedExecutionException headIsClosing) {
            // The head task is shutting down (cancel or failover). Whatever is still queued is covered by the last
            // completed checkpoint: it is either in that checkpoint's log or was produced after it and is redone.
            drainScheduled.set(false);
        }
    }

    private void drain() throws Exception {
        // Clear the flag before polling: a put() racing with this drain then schedules another one (no lost wake-up).
        drainScheduled.set(false);
        ThrowingConsumer<Message, Exception> handler = consumer;
        Message message;
        int n = 0;
        while (handler != null && n < MAX_DRAIN_BATCH && (message = queue.poll()) != null) {
            handler.accept(message);
            n++;
        }
        if (n == MAX_DRAIN_BATCH && !queue.isEmpty()) {
            scheduleDrain();
        }
    }
}
