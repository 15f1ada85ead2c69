package org.starflink.engine.tokenizer;

import java.util.Arrays;

/**
 * Turns a growing list of generated tokens into text deltas. A token that ends inside a multi-byte character
 * decodes to U+FFFD; such a tail is held back until the character is complete, so deltas concatenate to
 * exactly {@code tokenizer.decode(all tokens)}.
 */
public final class IncrementalDecoder {
    private final Tokenizer tokenizer;
    private int[] tokens = new int[16];
    private int count;
    private int emittedChars;

    public IncrementalDecoder(Tokenizer tokenizer) {
        this.tokenizer = tokenizer;
    }

    /** Adds one token and returns the text it completes (possibly empty). */
    public String add(int token) {
        if (count == tokens.length) {
            tokens = Arrays.copyOf(tokens, count * 2);
        }
        tokens[count++] = token;
        String text = tokenizer.decode(Arrays.copyOf(tokens, count));
        int stable = text.length();
        while (stable > emittedChars && text.charAt(stable - 1) == '\uFFFD') {
            stable--;
        }
        if (stable <= emittedChars) {
            return "";
        }
        String delta = text.substring(emittedChars, stable);
        emittedChars = stable;
        return delta;
    }

    /** Whatever is still held back (an incomplete character at the very end), once generation ends. */
    public String flush() {
        String text = tokenizer.decode(Arrays.copyOf(tokens, count));
        String delta = text.length() > emittedChars ? text.substring(emittedChars) : "";
        emittedChars = text.length();
        return delta;
    }
}
