package org.starflink.engine.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.starflink.engine.star.TokenContract;
import org.starflink.engine.testing.SharedModels;

/**
 * A document streamed in random chunks and tokenized piece by piece at exact cuts gives exactly the tokens of its
 * whole text, for both tokenizer kinds: stories260K's llama2.c tokenizer, our model's tokenizer.json (digit split +
 * GPT-2 ByteLevel) and the same vocabulary behind Llama 3's pre-tokenizer. Texts mix words, runs of spaces,
 * newlines, digits, punctuation and non-ASCII letters, where a wrong rule would show.
 */
class ExactCutTest {
    private static final int BOS = 1;
    private static final Path OWN_TOKENIZER = Path.of(System.getProperty("starflink.project.dir", ".."),
            "models/starflink-synth-14m/tokenizer.json");

    @TempDir
    Path dir;

    @Test
    void llama2cPiecesCutExactlyInEveryRandomChunking() throws IOException {
        Llama2cTokenizer tokenizer = Llama2cTokenizer.load(SharedModels.stories260KDir().resolve("tok512.bin"), 512);
        assertTrue(tokenizer.lastExactCut("Once upon a time", 0) > 0, "tok512 has an exact rule");
        assertStreamedEqualsWhole(tokenizer, texts(story()));
    }

    @Test
    void ourTokenizerJsonCutsExactlyInEveryRandomChunking() {
        try (HfTokenizer tokenizer = HfTokenizer.load(OWN_TOKENIZER)) {
            assertNull(tokenizer.whyNoExactCuts());
            assertStreamedEqualsWhole(tokenizer, texts(story()));
        }
    }

    @Test
    void llama3PreTokenizationCutsExactlyInEveryRandomChunking() throws IOException {
        ObjectNode json = ownTokenizerJson();
        ArrayNode steps = json.putObject("pre_tokenizer").put("type", "Sequence").putArray("pretokenizers");
        steps.addObject().put("type", "Split").put("behavior", "Isolated").put("invert", false)
                .putObject("pattern").put("Regex", HfCutRule.LLAMA3_PATTERN);
        steps.addObject().put("type", "ByteLevel").put("add_prefix_space", false).put("trim_offsets", true)
                .put("use_regex", false);
        try (HfTokenizer tokenizer = HfTokenizer.load(write(json))) {
            assertNull(tokenizer.whyNoExactCuts());
            assertStreamedEqualsWhole(tokenizer, texts(story()));
        }
    }

    @Test
    void configurationsWhoseCutsAreNotKnownHaveNoExactCut() throws IOException {
        ObjectNode prefixSpace = ownTokenizerJson();
        ((ObjectNode) prefixSpace.path("pre_tokenizer").path("pretokenizers").get(1)).put("add_prefix_space", true);
        ObjectNode normalizer = ownTokenizerJson();
        normalizer.putObject("normalizer").put("type", "NFC");
        ObjectNode whitespace = ownTokenizerJson();
        whitespace.putObject("pre_tokenizer").put("type", "Whitespace");
        for (ObjectNode json : List.of(prefixSpace, normalizer, whitespace)) {
            try (HfTokenizer tokenizer = HfTokenizer.load(write(json))) {
                assertNotNull(tokenizer.whyNoExactCuts());
                assertEquals(-1, tokenizer.lastExactCut("Once upon a time", 0));
            }
        }
    }

    /** The control: cutting inside a word instead (still between two letters) does change the tokens. */
    @Test
    void aCutInsideAWordWouldNotBeExact() {
        try (HfTokenizer tokenizer = HfTokenizer.load(OWN_TOKENIZER)) {
            String text = "the theater was there";
            int inside = text.indexOf("ater");
            int[] whole = tokenizer.encode(text);
            int[] pieces = concat(tokenizer.encode(text.substring(0, inside)),
                    tokenizer.encodeAfterCut(text.substring(inside)));
            assertFalse(Arrays.equals(whole, pieces), "a mid-word cut happens to be exact here: pick another");
            int cut = tokenizer.lastExactCut(text, 0);
            assertEquals(text.lastIndexOf(" there"), cut);
        }
    }

    @Test
    void theCutIsASingleSpaceBetweenTwoLetters() {
        assertEquals(5, WordBoundaryCut.last("hello world", 0));
        assertEquals(-1, WordBoundaryCut.last("hello  world", 0), "a run of spaces is no cut");
        assertEquals(-1, WordBoundaryCut.last("in 1999", 0), "nor a space before a digit");
        assertEquals(-1, WordBoundaryCut.last("hello world", 6), "nothing before from");
        assertEquals(-1, WordBoundaryCut.last("hello ", 0), "the letter after the space must be there");
        assertEquals(2, WordBoundaryCut.last("日本 語", 0), "letters are Unicode letters");
        assertEquals(2, WordBoundaryCut.last("\uD835\uDC00 b", 0), "a letter outside the BMP ends before the space");
    }

    /** Streams every text in random chunks as the document operator does and compares with the whole. */
    private static void assertStreamedEqualsWhole(Tokenizer tokenizer, List<String> texts) {
        Random random = new Random(7);
        int cuts = 0;
        for (String text : texts) {
            int[] whole = TokenContract.contextTokens(tokenizer, BOS, text);
            for (int round = 0; round < 5; round++) {
                List<Integer> tokens = new ArrayList<>();
                String tail = "";
                int pos = 0;
                while (pos < text.length()) {
                    int end = Math.min(text.length(), pos + 1 + random.nextInt(round % 2 == 0 ? 8 : 200));
                    int scanFrom = Math.max(0, tail.length() - 1); // no cut in the old tail but at its start
                    tail += text.substring(pos, end);
                    pos = end;
                    int cut = tokenizer.lastExactCut(tail, scanFrom);
                    if (cut > 0) {
                        add(tokens, TokenContract.segmentTokens(tokenizer, BOS, tokens.isEmpty(), tail.substring(0, cut)));
                        tail = tail.substring(cut);
                        cuts++;
                    }
                }
                add(tokens, TokenContract.segmentTokens(tokenizer, BOS, tokens.isEmpty(), tail));
                assertArrayEquals(whole, tokens.stream().mapToInt(Integer::intValue).toArray(),
                        "streamed tokens differ from the whole text's for " + abbreviate(text));
            }
        }
        assertTrue(cuts > 500, "the texts were cut often: " + cuts);
    }

    private static List<String> texts(String story) {
        List<String> texts = new ArrayList<>(List.of(story, "Once upon a time", "  leading spaces and  double  spaces ",
                "Numbers 123456 and 7 8 9, x1 y2; naïve café 日本語 テキスト 🚀 rocket\n\nNew paragraph\tTab",
                "it's John's, we'll they've I'm you'd -- end.", "a b c d e f g h i j k l m n o p"));
        Random random = new Random(11);
        String[] alphabet = {"a", "b", "e", "th", "the", "ing", " ", " ", " ", "  ", "\n", "1", "42", ",", ".", "'s",
            "é", "日", "😀", "-", "\t", "A", "Z"};
        for (int i = 0; i < 30; i++) {
            StringBuilder text = new StringBuilder();
            for (int k = 0, n = 20 + random.nextInt(300); k < n; k++) {
                text.append(alphabet[random.nextInt(alphabet.length)]);
            }
            texts.add(text.toString());
        }
        return texts;
    }

    private static String story() {
        try {
            return Files.readString(SharedModels.stories260KDir().resolve("reference/greedy_t0_256steps_runc.txt"));
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    private static ObjectNode ownTokenizerJson() throws IOException {
        return (ObjectNode) new ObjectMapper().readTree(OWN_TOKENIZER.toFile());
    }

    private Path write(ObjectNode json) throws IOException {
        Path file = Files.createTempFile(dir, "tokenizer", ".json");
        new ObjectMapper().writeValue(file.toFile(), json);
        return file;
    }

    private static void add(List<Integer> tokens, int[] more) {
        for (int token : more) {
            tokens.add(token);
        }
    }

    private static int[] concat(int[] a, int[] b) {
        int[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    private static String abbreviate(String text) {
        return text.length() <= 60 ? "'" + text + "'" : "'" + text.substring(0, 60) + "...' (" + text.length() + " chars)";
    }
}
