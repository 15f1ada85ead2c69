package org.starflink.operators.document;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.starflink.engine.star.BlockLayout;
import org.starflink.engine.star.TokenContract;
import org.starflink.engine.tokenizer.Tokenizer;

/**
 * Cuts a document that is still arriving into context blocks, emitting each block as soon as its tokens can no
 * longer change. Pure Java (no Flink): the {@link DocumentOperator} keeps the {@link Progress} (and the
 * {@link DocumentTail}) in keyed state.
 *
 * <p>The token contract ({@link TokenContract}, exactly): context tokens = [BOS] + tokenizer.encode(full document
 * text); block i = context tokens [i*b, (i+1)*b); the anchor = the first a context tokens. Chunk boundaries carry
 * no meaning, so text cannot be tokenized chunk by chunk: a word cut in two tokenizes differently from the whole
 * word. Two ways to honour it:
 *
 * <p><b>Exact cuts</b> ({@link #advance(DocumentTail, String, boolean, Progress)}, when the tokenizer has an exact
 * cut rule): the text is tokenized piece by piece, each piece once, at the tokenizer's exact cuts (a space between
 * two letters); the tokens before the last cut are final by the rule's definition. Cost per chunk: the new text
 * (plus the word it finishes) and the carry of fewer than b tokens; O(document) in all, whatever the chunking.
 * Text without such a cut (no spaces between letters: CJK, long numbers) is held until a cut or the last chunk.
 *
 * <p><b>Whole text</b> ({@link #advance(String, boolean, Progress)}, any tokenizer): every call re-tokenizes the
 * whole text received so far. While the document is incomplete, all tokens except the last {@link #holdBack} are
 * treated as stable (appending text changes only the tokens near the end: BPE merges do not reach back across
 * whole words); once the last chunk is in, every token is final and the short last block goes out too. Each call
 * checks that the tokens already emitted are still a prefix of the new tokenization (through a 64-bit hash of the
 * emitted tokens, so the state need not keep them); if not, the result is {@link Result#broken}. O(text) per call,
 * O(chunks x text) per document.
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
    private final BlockLayout layout;
    private final int holdBack;

    public StableBlockCutter(Tokenizer tokenizer, int bosId, BlockLayout layout, int holdBack) {
        if (holdBack < 0) {
            throw new IllegalArgumentException("hold-back must be >= 0, got " + holdBack);
        }
        this.tokenizer = tokenizer;
        this.bosId = bosId;
        this.blockSize = layout.blockSize();
        this.layout = layout;
        this.holdBack = holdBack;
    }

    /** Whether the tokenizer has an exact cut rule, so that documents can be cut at exact cuts. */
    public boolean hasExactCuts() {
        return tokenizer.hasExactCuts();
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
     * @param tail  what an exactly cut document keeps for the next call; null for the whole-text way
     */
    public record Result(List<NewBlock> blocks, Progress progress, boolean empty, String broken, DocumentTail tail) {
        Result(List<NewBlock> blocks, Progress progress, boolean empty, String broken) {
            this(blocks, progress, empty, broken, null);
        }

        static Result broken(String reason) {
            return new Result(List.of(), null, false, reason);
        }

        public boolean isBroken() {
            return broken != null;
        }
    }

    /** [BOS] + tokenizer.encode(text): the context tokens of a document whose whole text is {@code text}. */
    public int[] contextTokens(String text) {
        return TokenContract.contextTokens(tokenizer, bosId, text);
    }

    /**
     * Tokenizes what became final since the last exact cut and returns the blocks it completes.
     *
     * @param tail     what the previous call returned ({@code new DocumentTail()} for a new document)
     * @param appended the text of the chunks applied since, in seq order
     * @param complete whether the last chunk is among them
     */
    public Result advance(DocumentTail tail, String appended, boolean complete, Progress progress) {
        if (!hasExactCuts()) {
            throw new IllegalStateException("the tokenizer has no exact cut rule: cut the whole text instead");
        }
        // The old tail has no exact cut but at its start (the previous call took its last one); a new cut needs a
        // letter after the space, so it can start at the old tail's last character at the earliest.
        int scanFrom = Math.max(0, tail.text.length() - 1);
        String text = tail.text + appended;
        int cut = complete ? text.length() : tokenizer.lastExactCut(text, scanFrom);
        int tokenized = tail.tokenized;
        int[] carry = tail.carry;
        String rest = text;
        if (cut > 0) {
            String piece = text.substring(0, cut);
            rest = text.substring(cut);
            // Blank text has no exact cut, so a blank piece is a complete document that was blank throughout.
            if (tokenized == 0 && piece.isBlank()) {
                return new Result(List.of(), progress, true, null, new DocumentTail());
            }
            int[] tokens = TokenContract.segmentTokens(tokenizer, bosId, tokenized == 0, piece);
            carry = concat(carry, tokens);
            tokenized += tokens.length;
        }
        if (complete && tokenized <= 1) {
            return new Result(List.of(), progress, true, null, new DocumentTail()); // [BOS] only, or nothing at all
        }
        int[] anchor = tail.anchor;
        List<NewBlock> blocks = new ArrayList<>();
        int block = progress.blockCount();
        int start = progress.emittedTokens();
        long hash = progress.emittedHash();
        int from = 0;
        while (carry.length - from >= blockSize || (complete && from < carry.length)) {
            int[] blockTokens = Arrays.copyOfRange(carry, from, Math.min(from + blockSize, carry.length));
            if (block == 0) {
                anchor = layout.anchor(blockTokens); // a <= b: the anchor lies in block 0
            }
            blocks.add(new NewBlock(block, start, blockTokens, block == 0 ? new int[0] : anchor));
            hash = TokenHash.extend(hash, blockTokens);
            block++;
            start += blockTokens.length;
            from += blockTokens.length;
        }
        DocumentTail next = new DocumentTail(rest, tokenized, Arrays.copyOfRange(carry, from, carry.length), anchor);
        return new Result(blocks, new Progress(block, start, hash), false, null, next);
    }

    /**
     * The whole-text way: re-tokenizes the text received so far and returns the blocks that became stable since
     * {@code progress}.
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
        int[] anchor = layout.anchor(tokens);
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

    private static int[] concat(int[] a, int[] b) {
        int[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
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
