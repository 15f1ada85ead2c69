package org.starflink.engine.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.starflink.engine.EngineException;
import org.starflink.engine.testing.RandomHfCheckpoint;

class HfTokenizerTest {
    private static final String MIXED = "the theater in a sun, naïve café 日本語 🚀!";

    @TempDir
    static Path dir;
    private static HfTokenizer tokenizer;

    @BeforeAll
    static void load() throws IOException {
        RandomHfCheckpoint.builder().layers(1).writeTo(dir);
        tokenizer = HfTokenizer.load(dir);
    }

    @AfterAll
    static void close() {
        tokenizer.close();
    }

    @Test
    void roundTripsAsciiAndNonAsciiText() {
        assertEquals(MIXED, tokenizer.decode(tokenizer.encode(MIXED)));
    }

    @Test
    void appliesMergesAndMapsBytesToTheirIds() {
        int the = 256 + RandomHfCheckpoint.MERGES.indexOf("Ġt he");
        int in = 256 + RandomHfCheckpoint.MERGES.indexOf("i n");
        // "the" at the start has no space, so only "h e" merges; " the" becomes one token; "é" is two bytes.
        assertArrayEquals(new int[] {'t', 256 + RandomHfCheckpoint.MERGES.indexOf("h e"), the, 'x', in, 0xC3, 0xA9},
                tokenizer.encode("the thexiné"));
    }

    @Test
    void addsNoBosEvenThoughTheFilesPostProcessorWould() {
        int[] ids = tokenizer.encode("hi");
        assertArrayEquals(new int[] {'h', 'i'}, ids);
    }

    @Test
    void decodingSkipsSpecialTokens() {
        int[] ids = tokenizer.encode(MIXED);
        int[] framed = new int[ids.length + 2];
        framed[0] = RandomHfCheckpoint.BOS_ID;
        System.arraycopy(ids, 0, framed, 1, ids.length);
        framed[framed.length - 1] = RandomHfCheckpoint.EOS_ID;
        assertEquals(MIXED, tokenizer.decode(framed));
    }

    @Test
    void neverTruncatesLongInput() {
        String text = "the sun is in the air ".repeat(400);
        int[] ids = tokenizer.encode(text);
        assertTrue(ids.length > 2000, "got only " + ids.length + " tokens");
        assertEquals(text, tokenizer.decode(ids));
    }

    @Test
    void countsVocabularyAndAddedTokens() {
        assertEquals(RandomHfCheckpoint.TOKENIZER_SIZE, tokenizer.vocabSize());
    }

    /** Byte tokens split multi-byte characters; streamed deltas must still add up to whole characters. */
    @Test
    void streamsNonAsciiTextWholeThroughTheIncrementalDecoder() {
        IncrementalDecoder decoder = new IncrementalDecoder(tokenizer);
        StringBuilder streamed = new StringBuilder();
        for (int id : tokenizer.encode(MIXED)) {
            String delta = decoder.add(id);
            assertFalse(delta.contains("\uFFFD"), () -> "partial character in delta: " + delta);
            streamed.append(delta);
        }
        streamed.append(decoder.flush());
        assertEquals(MIXED, streamed.toString());
    }

    /** The {@link Tokenizer} contract promises thread safety; one model's tokenizer serves every operator. */
    @Test
    void encodesAndDecodesConcurrently() throws Exception {
        int[] expected = tokenizer.encode(MIXED);
        ExecutorService pool = Executors.newFixedThreadPool(4);
        try {
            List<Future<Boolean>> results = new ArrayList<>();
            for (int task = 0; task < 16; task++) {
                results.add(pool.submit(() -> {
                    for (int i = 0; i < 200; i++) {
                        int[] ids = tokenizer.encode(MIXED);
                        if (!Arrays.equals(expected, ids) || !MIXED.equals(tokenizer.decode(ids))) {
                            return false;
                        }
                    }
                    return true;
                }));
            }
            for (Future<Boolean> result : results) {
                assertTrue(result.get());
            }
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void reportsAMissingTokenizerFile(@TempDir Path empty) {
        EngineException e = assertThrows(EngineException.class, () -> HfTokenizer.load(empty));
        assertTrue(e.getMessage().contains(empty.resolve("tokenizer.json") + " is missing"), e.getMessage());
    }

    @Test
    void loadsFromAnExplicitFilePath() {
        try (HfTokenizer fromFile = HfTokenizer.load(dir.resolve("tokenizer.json"))) {
            assertEquals(Arrays.toString(tokenizer.encode(MIXED)), Arrays.toString(fromFile.encode(MIXED)));
        }
    }
}
