package org.starflink.engine.generate;

/**
 * A sequence being extended: the model state after some tokens. The generator feeds it the prompt once, then
 * each sampled token, and reads the logits of the last token fed. Global and Star Attention are two sessions.
 * A session holds backend memory (its KV): close it when done.
 */
public interface Session extends AutoCloseable {

    /** Appends tokens to the sequence and returns the logits [vocab] after the last of them. */
    float[] feed(int[] tokens);

    /** Number of tokens the session holds (its next position). */
    int length();

    @Override
    void close();
}
