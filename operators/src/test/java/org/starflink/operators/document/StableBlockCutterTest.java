package org.starflink.operators.document;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.starflink.engine.star.BlockLayout;
import org.starflink.engine.tokenizer.Tokenizer;

/** The cutter alone, with tokenizers simple enough to predict every block. */
class StableBlockCutterTest {
    private static final int BOS = 1;

    /** One token per character (its code); "xy" merges into one token 1000: a toy BPE merge. */
    private static final Tokenizer TOY = new ToyTokenizer(false);

    /**
     * The same toy with an exact cut rule: it cuts before a space that follows 'a'..'z' and precedes one (a space
     * never merges, so those cuts are exact).
     */
    private static final Tokenizer TOY_EXACT = new ToyTokenizer(true);

    private record ToyTokenizer(boolean exactCuts) implements Tokenizer {
        @Override
        public int[] encode(String text) {
            return text.replace("xy", "\u03e8").chars().toArray(); // U+03E8 = 1000
        }

        @Override
        public String decode(int[] tokens) {
            throw new UnsupportedOperationException();
        }

        @Override
        public int vocabSize() {
            return 2000;
        }

        @Override
        public boolean hasExactCuts() {
            return exactCuts;
        }

        @Override
        public int lastExactCut(String text, int from) {
            for (int c = text.length() - 2; exactCuts && c >= Math.max(1, from); c--) {
                if (text.charAt(c) == ' ' && Character.isLetter(text.charAt(c - 1))
                        && Character.isLetter(text.charAt(c + 1))) {
                    return c;
                }
            }
            return -1;
        }

        @Override
        public int[] encodeAfterCut(String rest) {
            return encode(rest);
        }
    }

    private final StableBlockCutter cutter = new StableBlockCutter(TOY, BOS, new BlockLayout(4, 2), 2);

    @Test
    void fullBlocksGoOutBehindTheHoldBackAndTheShortLastBlockAtTheEnd() {
        // [BOS a b c d e f g] = 8 tokens, 6 stable: one block of 4.
        StableBlockCutter.Result first = cutter.advance("abcdefg", false, StableBlockCutter.Progress.NONE);
        assertEquals(1, first.blocks().size());
        assertArrayEquals(new int[] {BOS, 'a', 'b', 'c'}, first.blocks().get(0).tokens());
        assertArrayEquals(new int[0], first.blocks().get(0).anchor());
        assertEquals(4, first.progress().emittedTokens());

        // Complete: everything, the short last block included; blocks > 0 carry the anchor [BOS a].
        StableBlockCutter.Result rest = cutter.advance("abcdefghi", true, first.progress());
        List<StableBlockCutter.NewBlock> blocks = rest.blocks();
        assertEquals(2, blocks.size());
        assertEquals(1, blocks.get(0).index());
        assertEquals(4, blocks.get(0).start());
        assertArrayEquals(new int[] {'d', 'e', 'f', 'g'}, blocks.get(0).tokens());
        assertArrayEquals(new int[] {'h', 'i'}, blocks.get(1).tokens());
        assertArrayEquals(new int[] {BOS, 'a'}, blocks.get(1).anchor());
        assertEquals(new StableBlockCutter.Progress(3, 10, StableBlockCutter.TokenHash.of(
                cutter.contextTokens("abcdefghi"), 10)), rest.progress());
    }

    @Test
    void aChangedPrefixIsReportedNotEmitted() {
        StableBlockCutter noHoldBack = new StableBlockCutter(TOY, BOS, new BlockLayout(2, 1), 0);
        StableBlockCutter.Result first = noHoldBack.advance("abx", false, StableBlockCutter.Progress.NONE);
        assertEquals(2, first.blocks().size()); // [BOS a] [b x]: "x" went out too early
        StableBlockCutter.Result second = noHoldBack.advance("abxy", false, first.progress());
        assertTrue(second.isBroken(), "'x' became part of the merged 'xy' token");
        assertTrue(second.blocks().isEmpty());
        // With a hold-back of 2 the same text is safe.
        StableBlockCutter.Result safe = new StableBlockCutter(TOY, BOS, new BlockLayout(2, 1), 2)
                .advance("abx", false, StableBlockCutter.Progress.NONE);
        assertEquals(1, safe.blocks().size());
    }

    @Test
    void blankTextNeverEmitsAndEndsEmpty() {
        StableBlockCutter.Result partial = cutter.advance("          \n\n\n", false, StableBlockCutter.Progress.NONE);
        assertTrue(partial.blocks().isEmpty(), "whitespace tokens are not emitted while the text is blank");
        assertFalse(partial.empty());
        StableBlockCutter.Result done = cutter.advance("          \n\n\n ", true, partial.progress());
        assertTrue(done.empty());
        assertTrue(done.blocks().isEmpty());
        assertTrue(cutter.advance("", true, StableBlockCutter.Progress.NONE).empty());
    }

    @Test
    void exactCutsEmitTheFinalTokensOnceAndCarryTheRest() {
        StableBlockCutter exact = new StableBlockCutter(TOY_EXACT, BOS, new BlockLayout(4, 2), 2);
        // "ab cx": the cut before " cx" makes [BOS a b] final; no block of 4 yet, so it is carried.
        StableBlockCutter.Result first = exact.advance(new DocumentTail(), "ab cx", false,
                StableBlockCutter.Progress.NONE);
        assertTrue(first.blocks().isEmpty());
        assertEquals(" cx", first.tail().text);
        assertArrayEquals(new int[] {BOS, 'a', 'b'}, first.tail().carry);
        assertEquals(3, first.tail().tokenized);
        // "y de f": "xy" merges across the chunk boundary (it waited in the tail); the cut before " f" makes
        // [' ' c xy ' ' d e] final: blocks 0 and 1 go out, block 1 with the anchor (block 0's first 2 tokens).
        StableBlockCutter.Result second = exact.advance(first.tail(), "y de f", false, first.progress());
        assertEquals(2, second.blocks().size());
        assertArrayEquals(new int[] {BOS, 'a', 'b', ' '}, second.blocks().get(0).tokens());
        assertArrayEquals(new int[] {'c', 1000, ' ', 'd'}, second.blocks().get(1).tokens());
        assertArrayEquals(new int[] {BOS, 'a'}, second.blocks().get(1).anchor());
        assertArrayEquals(new int[] {BOS, 'a'}, second.tail().anchor);
        assertArrayEquals(new int[] {'e'}, second.tail().carry);
        assertEquals(" f", second.tail().text);
        // The last chunk: the rest goes out; all blocks together are the whole text's.
        StableBlockCutter.Result last = exact.advance(second.tail(), "g", true, second.progress());
        int[] whole = exact.contextTokens("ab cxy de fg");
        assertEquals(1, last.blocks().size());
        assertEquals(8, last.blocks().get(0).start());
        assertArrayEquals(Arrays.copyOfRange(whole, 8, whole.length), last.blocks().get(0).tokens());
        assertArrayEquals(new int[] {BOS, 'a'}, last.blocks().get(0).anchor());
        assertEquals(whole.length, last.progress().emittedTokens());
        assertEquals(StableBlockCutter.TokenHash.of(whole, whole.length), last.progress().emittedHash());
    }

    @Test
    void exactCutsOfBlankTextNeverEmitAndEndEmpty() {
        StableBlockCutter exact = new StableBlockCutter(TOY_EXACT, BOS, new BlockLayout(2, 1), 2);
        StableBlockCutter.Result partial = exact.advance(new DocumentTail(), "   \n\n ", false,
                StableBlockCutter.Progress.NONE);
        assertTrue(partial.blocks().isEmpty());
        assertFalse(partial.empty());
        StableBlockCutter.Result done = exact.advance(partial.tail(), "  ", true, partial.progress());
        assertTrue(done.empty());
        assertTrue(exact.advance(new DocumentTail(), "", true, StableBlockCutter.Progress.NONE).empty());
    }

    @Test
    void aTokenizerWithoutARuleIsNotCutExactly() {
        assertFalse(cutter.hasExactCuts());
        assertThrows(IllegalStateException.class, () -> cutter.advance(new DocumentTail(), "ab cd", false,
                StableBlockCutter.Progress.NONE));
    }
}
