package org.starflink.engine.star;

import org.starflink.engine.tokenizer.Tokenizer;

/**
 * The token contract every component compares against, exactly: context tokens = [BOS] + encode(whole document
 * text); blocks and the anchor are cut from them ({@link BlockLayout}); question tokens = encode(question), no BOS,
 * at positions N, N+1, ... A document that streams in may be tokenized piece by piece only at the tokenizer's exact
 * cuts ({@link Tokenizer#lastExactCut}), which by their definition give the same tokens.
 */
public final class TokenContract {
    private TokenContract() {
    }

    /** [BOS] + encode(text): the context tokens of a document whose whole text is {@code text}. */
    public static int[] contextTokens(Tokenizer tokenizer, int bosId, String text) {
        return segmentTokens(tokenizer, bosId, true, text);
    }

    /**
     * The context tokens of one piece of a document cut at exact cuts: the first piece as {@link #contextTokens},
     * every later one (which starts at an exact cut) through {@link Tokenizer#encodeAfterCut}. Concatenated in
     * order they equal {@link #contextTokens} of the whole text.
     */
    public static int[] segmentTokens(Tokenizer tokenizer, int bosId, boolean first, String segment) {
        if (!first) {
            return tokenizer.encodeAfterCut(segment);
        }
        int[] body = tokenizer.encode(segment);
        int[] tokens = new int[body.length + 1];
        tokens[0] = bosId;
        System.arraycopy(body, 0, tokens, 1, body.length);
        return tokens;
    }
}
