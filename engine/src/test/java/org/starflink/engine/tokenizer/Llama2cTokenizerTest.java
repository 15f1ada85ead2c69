package org.starflink.engine.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.starflink.engine.testing.SharedModels;

/** The heap-based merge against a literal transcription of run.c's quadratic loop, on varied text. */
class Llama2cTokenizerTest {

    @Test
    void encodesExactlyLikeRunC() throws IOException {
        Path file = SharedModels.stories260KDir().resolve("tok512.bin");
        Llama2cTokenizer tokenizer = Llama2cTokenizer.load(file, 512);
        RunCReference reference = new RunCReference(file, 512);
        String story = Files.readString(SharedModels.stories260KDir().resolve("reference/greedy_t0_256steps_runc.txt"));
        Random random = new Random(3);
        List<String> texts = new ArrayList<>(List.of("", " ", "a", "Once upon a time", story, story.repeat(3),
                "Ünïcödé ✓ 日本語 and emoji 🙂 mixed in", "aaaaaaaaaaaaaaaaaaaaaaaaaaaa", "  double  spaces\n\nlines"));
        String alphabet = "abcdefghij klmnop.,!?\"'\nLT 0123456789é";
        for (int i = 0; i < 30; i++) {
            StringBuilder text = new StringBuilder();
            for (int c = random.nextInt(300); c > 0; c--) {
                text.append(alphabet.charAt(random.nextInt(alphabet.length())));
            }
            texts.add(text.toString());
        }
        for (String text : texts) {
            assertArrayEquals(reference.encode(text), tokenizer.encode(text), "text: " + text);
        }
        assertEquals(story.strip(), tokenizer.decode(prependBos(tokenizer.encode(story))).strip());
    }

    private static int[] prependBos(int[] tokens) {
        int[] withBos = new int[tokens.length + 1];
        withBos[0] = 1;
        System.arraycopy(tokens, 0, withBos, 1, tokens.length);
        return withBos;
    }

    /** run.c's encode, transcribed literally (rescan after every merge). */
    private static final class RunCReference {
        private final String[] pieces;
        private final float[] scores;
        private final Map<String, Integer> ids = new HashMap<>();

        RunCReference(Path file, int vocab) throws IOException {
            ByteBuffer in = ByteBuffer.wrap(Files.readAllBytes(file)).order(ByteOrder.LITTLE_ENDIAN);
            in.getInt();
            pieces = new String[vocab];
            scores = new float[vocab];
            for (int i = 0; i < vocab; i++) {
                scores[i] = in.getFloat();
                byte[] bytes = new byte[in.getInt()];
                in.get(bytes);
                pieces[i] = new String(bytes, StandardCharsets.UTF_8);
                ids.putIfAbsent(pieces[i], i);
            }
        }

        int[] encode(String text) {
            List<Integer> tokens = new ArrayList<>();
            if (!text.isEmpty()) {
                tokens.add(ids.get(" "));
            }
            text.codePoints().forEach(cp -> {
                String ch = new String(Character.toChars(cp));
                if (ids.containsKey(ch)) {
                    tokens.add(ids.get(ch));
                } else {
                    for (byte b : ch.getBytes(StandardCharsets.UTF_8)) {
                        tokens.add((b & 0xff) + 3);
                    }
                }
            });
            while (true) {
                float best = -1e10f;
                int bestId = -1;
                int bestIdx = -1;
                for (int i = 0; i < tokens.size() - 1; i++) {
                    Integer id = ids.get(pieces[tokens.get(i)] + pieces[tokens.get(i + 1)]);
                    if (id != null && scores[id] > best) {
                        best = scores[id];
                        bestId = id;
                        bestIdx = i;
                    }
                }
                if (bestIdx == -1) {
                    break;
                }
                tokens.set(bestIdx, bestId);
                tokens.remove(bestIdx + 1);
            }
            return tokens.stream().mapToInt(Integer::intValue).toArray();
        }
    }
}
