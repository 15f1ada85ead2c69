package org.starflink.engine.tokenizer;

/** Text to token ids and back. Implementations are thread-safe. */
public interface Tokenizer {

    /** The ids of {@code text}, without BOS or EOS. */
    int[] encode(String text);

    /**
     * The text of a sequence of generated tokens (special tokens such as BOS/EOS render as nothing).
     * Streaming callers use {@link IncrementalDecoder}, which diffs successive decodes so that characters
     * spread over several byte tokens come out whole.
     */
    String decode(int[] tokens);

    int vocabSize();
}
