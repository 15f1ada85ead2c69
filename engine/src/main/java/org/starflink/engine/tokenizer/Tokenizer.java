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

    /** Whether this tokenizer has an exact cut rule ({@link #lastExactCut}, {@link #encodeAfterCut}). */
    default boolean hasExactCuts() {
        return false;
    }

    /**
     * The last position c >= {@code from} at which {@code text} can be cut exactly: encode(t) = encode(t[0, c)) ++
     * {@link #encodeAfterCut}(t[c, end)) for every text t that starts with {@code text}, so the tokens before c are
     * final however the text goes on. -1 if there is no such position, or this tokenizer has no exact rule ({@link #hasExactCuts}: then
     * only the whole text's encoding is exact). Lets a document that streams in be tokenized once, piece by piece.
     */
    default int lastExactCut(String text, int from) {
        return -1;
    }

    /**
     * The ids of a text that follows an exact cut ({@link #lastExactCut}): unlike {@link #encode}, nothing that
     * belongs only at the start of a text (SentencePiece's dummy prefix) is added.
     *
     * @throws UnsupportedOperationException if this tokenizer has no exact cut rule
     */
    default int[] encodeAfterCut(String rest) {
        throw new UnsupportedOperationException(getClass().getSimpleName() + " has no exact cut rule");
    }
}
