package org.starflink.operators.document;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.starflink.engine.star.BlockLayout;
import org.starflink.engine.tokenizer.Tokenizer;

/**
 * Cuts a document that is still arriving into context blocks, emitting each block as soon as its tokens can no
 * longer change. Pure Java (no Flink): the {@link DocumentOperator} keeps the {@link Progress} in keyed state.
 *
 * <p>The token contract (other components compare against it, exactly): context tokens = [BOS] +
 * tokenizer.encode(full document text); block i = context tokens [i*b, (i+1)*b); the anchor = the first a
 * context tokens. Chunk boundaries carry no meaning, so text cannot be tokenized chunk by chunk: a word cut in two
 * tokenizes differently from the whole word.
 *
 * <p>How: every call re-tokenizes the whole text received so far. While the document is incomplete, all tokens
 * except the last {@link #holdBack} are treated as stable (appending text changes only the tokens near the end:
 * BPE merges do not reach back across whole words); once the last chunk is in, every token is final and the short
 * last block goes out too. Each call checks that the tokens already emitted are still a prefix of the new
 * tokenization (through a 64-bit hash of the emitted tokens, so the state need not keep them); if not, the result
 * is {@link Result#broken}.
 *
 * <p>Trade-off: re-tokenizing the whole text costs O(text) per call (more for tokenizers whose encode is
 * superlinear), so a document of k chunks costs O(k x text). A suffix restart would be cheaper but is not exact
 * through the {@link Tokenizer} interface: encode() adds SentencePiece's dummy prefix, so encode(suffix) is not the
 * tail of encode(whole); an exact restart rule is tokenizer-specific and belongs in the engine.
 *
 * <p>Blank text (empty or whitespace only) never emits a block, even if the tokenizer turns whitespace into tokens:
 * a document that ends blank is "empty" (no block at all), and one that is still blank cannot have emitted a block
 * it would later have to take back.
 */
public final class StableBlockCutter {
    /** Tokens at the end of an incomplete document's tokenization that are not yet trusted. */
    public static final int DEFAULT_HOLD_BACK = 32;

    private final Tokenizer tokenizer;
    private final int bosId;
    private final int blockSize;
    private final int anchorSize;
    private final int holdBack;

    public StableBlockCutter(Tokenizer tokenizer, int bosId, BlockLayout layout, int holdBack) {
        if (holdBack < 0) {
            throw new IllegalArgumentException("hold-back must be >= 0, got " + holdBack);
        }
        this.tokenizer = tokenizer;
        this.bosId = bosId;
        this.blockSize = layout.blockSize();
        this.anchorSize = layout.anchorSize();
        this.holdBack = holdBack;
    }

    /** What has been emitted so far: {@code blockCount} full blocks holding {@code emittedTokens} tokens. */
    public record Progress(int blockCount, int emittedTokens, long emittedHash) {
        public static final Progress NONE = new Progress(0, 0, TokenHash.EMPTY);
    }

    /** A block to emit: context tokens [start, start + tokens.length); anchor empty for block 0. */
    public record NewBlock(int index, int start, int[] tokens, int[] anchor) {
    }

    /**
     * The outcome of one call: the blocks to emit now and the progress after them; or broken, with the reason.
     *
     * @param empty true when the document is complete and blank: no block will ever exist
     */
    public record Result(List<NewBlock> blocks, Progress progress, boolean empty, String broken) {
        static Result broken(String reason) {
            return new Result(List.of(), null, false, reason);
        }

        public boolean isBroken() {
            return broken != null;
        }
    }

    /** [BOS] + tokenizer.encode(text): the context tokens of a document whose whole text is {@code text}. */
    public int[] contextTokens(String text) {
        int[] body = tokenizer.encode(text);
        int[] tokens = new int[body.length + 1];
        tokens[0] = bosId;
        System.arraycopy(body, 0, tokens, 1, body.length);
        return tokens;
    }

    /**
     * Re-tokenizes the text received so far and returns the blocks that became stable since {@code progress}.
     *
     * @param text     the document's text so far (all chunks applied, in seq order)
     * @param complete whether the last chunk is among them
     */
    public Result advance(String text, boolean complete, Progress progress) {
        if (text.isBlank()) {
            // Nothing is ever emitted for blank text (see the class comment), so progress is NONE here.
            return new Result(List.of(), progress, complete, null);
        }
        int[] tokens = contextTokens(text);
        if (tokens.length < progress.emittedTokens()
                || TokenHash.of(tokens, progress.emittedTokens()) != progress.emittedHash()) {
            return Result.broken("the new tokenization of " + text.length() + " characters (" + tokens.length
                    + " tokens) does not start with the " + progress.emittedTokens() + " tokens already emitted");
        }
        if (complete && tokens.length == 1) {
            return new Result(List.of(), progress, true, null); // [BOS] only: the tokenizer found nothing to encode
        }
        int stable = complete ? tokens.length : Math.max(0, tokens.length - holdBack);
        int[] anchor = Arrays.copyOf(tokens, Math.min(anchorSize, tokens.length));
        List<NewBlock> blocks = new ArrayList<>();
        int block = progress.blockCount();
        int start = progress.emittedTokens();
        long hash = progress.emittedHash();
        // Full blocks while stable; then, once complete, the short last block.
        while (start + blockSize <= stable || (complete && start < stable)) {
            int end = Math.min(start + blockSize, stable);
            int[] blockTokens = Arrays.copyOfRange(tokens, start, end);
            blocks.add(new NewBlock(block, start, blockTokens, block == 0 ? new int[0] : anchor));
            hash = TokenHash.extend(hash, blockTokens);
            block++;
            start = end;
        }
        return new Result(blocks, new Progress(block, start, hash), false, null);
    }

    /** FNV-1a over token ids: identifies the emitted prefix without keeping it in state. */
    static final class TokenHash {
        static final long EMPTY = 0xcbf29ce484222325L;
        private static final long PRIME = 0x100000001b3L;

        private TokenHash() {
        }

        static long extend(long hash, int[] tokens) {
            long h = hash;
            for (int token : tokens) {
                h = (h ^ token) * PRIME;
            }
            return h;
        }

        static long of(int[] tokens, int length) {
            return extend(EMPTY, Arrays.copyOf(tokens, length));
        }
    }
}
