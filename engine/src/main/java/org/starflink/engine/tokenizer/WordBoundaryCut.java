package org.starflink.engine.tokenizer;

/**
 * The one place a growing text may be cut so that the tokens before the cut never change: just before a single
 * space that stands between two letters ("...a| b..."). Tokenizers whose pre-tokenization always starts a new
 * piece at such a space, and whose pieces never reach across it, declare the cut exact
 * ({@link Tokenizer#lastExactCut}): for every text t and such a cut c, encode(t) = encode(t[0, c)) ++
 * encodeAfterCut(t[c, end)), whatever t continues with, because the three characters around c are already there.
 *
 * <p>Why between two letters and not at any space: a run of spaces, or a space before a digit or a symbol, is
 * pre-tokenized differently by different tokenizers (GPT-2's {@code \s+(?!\S)} leaves the last space of a run to
 * the next word; Llama 3 attaches one non-letter to a letter run), while a single space between letters is the
 * start of a word in all of them.
 */
final class WordBoundaryCut {
    private WordBoundaryCut() {
    }

    /**
     * The largest c with {@code from <= c}, a letter ending at c, {@code text[c] == ' '} and a letter starting at
     * c + 1; -1 if there is none. Scans back from the end and stops at {@code from}, so a caller that knows there is
     * no cut before {@code from} pays only for the new text.
     */
    static int last(CharSequence text, int from) {
        for (int c = text.length() - 2; c >= Math.max(1, from); c--) {
            if (text.charAt(c) == ' ' && Character.isLetter(Character.codePointAt(text, c + 1))
                    && Character.isLetter(Character.codePointBefore(text, c))) {
                return c;
            }
        }
        return -1;
    }
}
