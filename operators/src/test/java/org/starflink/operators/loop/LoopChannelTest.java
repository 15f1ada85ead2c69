package org.starflink.operators.loop;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Queue;
import org.apache.flink.api.common.operators.MailboxExecutor;
import org.apache.flink.util.function.ThrowingRunnable;
import org.junit.jupiter.api.Test;

/** The channel without Flink: a queue-backed mailbox stands in for the head's task thread. */
class LoopChannelTest {

    /** Runs mails only when asked, like a task thread between records. */
    static final class ManualMailbox implements MailboxExecutor {
        final Queue<ThrowingRunnable<? extends Exception>> mails = new ArrayDeque<>();

        @Override
        public void execute(MailOptions options, ThrowingRunnable<? extends Exception> command, String description,
                Object... args) {
            mails.add(command);
        }

        @Override
        public void yield() {
            throw new UnsupportedOperationException();
        }

        @Override
        public boolean tryYield() {
            return false;
        }

        @Override
        public boolean shouldInterrupt() {
            return false;
        }

        int runAll() throws Exception {
            int n = 0;
            while (!mails.isEmpty()) {
                mails.poll().run();
                n++;
            }
            return n;
        }
    }

    static LoopChannel.Key key(String loop) {
        return new LoopChannel.Key(loop, "job", 0, 0);
    }

    @Test
    void messagesPutBeforeTheHeadRegistersAreDeliveredInOrder() throws Exception {
        LoopChannel tailSide = LoopChannel.acquire(key("early"));
        tailSide.put(new LoopChannel.Feedback("a"));
        tailSide.put(new LoopChannel.Sentinel(7));
        LoopChannel headSide = LoopChannel.acquire(key("early"));
        assertSame(tailSide, headSide);

        ManualMailbox mailbox = new ManualMailbox();
        List<LoopChannel.Message> got = new ArrayList<>();
        headSide.registerConsumer(mailbox, got::add);
        tailSide.put(new LoopChannel.Exit(1L));
        assertEquals(1, mailbox.runAll(), "one drain mail for three puts");
        assertEquals(List.of(new LoopChannel.Feedback("a"), new LoopChannel.Sentinel(7), new LoopChannel.Exit(1L)), got);

        LoopChannel.release(tailSide);
        assertSame(headSide, LoopChannel.acquire(key("early")), "removed while still referenced");
        LoopChannel.release(headSide);
        LoopChannel.release(headSide);
        assertEquals(0, LoopChannel.openChannels());
    }

    @Test
    void aDrainMailHandlesABoundedBatchAndReschedulesTheRest() throws Exception {
        LoopChannel channel = LoopChannel.acquire(key("batch"));
        int n = LoopChannel.MAX_DRAIN_BATCH * 2 + 5;
        for (int i = 0; i < n; i++) {
            channel.put(new LoopChannel.Feedback(i));
        }
        ManualMailbox mailbox = new ManualMailbox();
        List<LoopChannel.Message> got = new ArrayList<>();
        channel.registerConsumer(mailbox, got::add);
        mailbox.mails.poll().run();
        assertEquals(LoopChannel.MAX_DRAIN_BATCH, got.size());
        assertTrue(mailbox.runAll() >= 2);
        assertEquals(n, got.size());
        LoopChannel.release(channel);
        assertEquals(0, LoopChannel.openChannels());
    }
}
