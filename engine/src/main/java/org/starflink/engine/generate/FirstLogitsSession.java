package org.starflink.engine.generate;

/**
 * A session that remembers the logits of its first feed: after a question, those are the logits at the first
 * answer position, where Star and global are compared.
 */
public final class FirstLogitsSession implements Session {
    private final Session inner;
    private float[] firstLogits;

    public FirstLogitsSession(Session inner) {
        this.inner = inner;
    }

    @Override
    public float[] feed(int[] tokens) {
        float[] logits = inner.feed(tokens);
        if (firstLogits == null) {
            firstLogits = logits;
        }
        return logits;
    }

    @Override
    public int length() {
        return inner.length();
    }

    @Override
    public void close() {
        inner.close();
    }

    /** [vocab], or null before the first feed. */
    public float[] firstLogits() {
        return firstLogits;
    }
}
