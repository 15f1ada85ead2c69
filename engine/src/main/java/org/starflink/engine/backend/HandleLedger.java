package org.starflink.engine.backend;

import java.util.concurrent.atomic.AtomicLong;

/**
 * Counts a backend's open handles (tensors and KV caches): what {@link Backend#liveHandles} reports, so that a
 * leak shows as a number that grows instead of as memory that slowly runs out.
 */
public final class HandleLedger {
    private final AtomicLong open = new AtomicLong();

    public void opened() {
        open.incrementAndGet();
    }

    public void closed() {
        open.decrementAndGet();
    }

    public long open() {
        return open.get();
    }
}
