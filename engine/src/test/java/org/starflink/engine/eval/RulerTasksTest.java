package org.starflink.engine.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.List;
import java.util.function.Function;
import org.junit.jupiter.api.Test;

class RulerTasksTest {

    /** A stand-in token counter: one token per whitespace-separated piece plus one per punctuation mark. */
    private static final Function<String, Integer> WORDS = s -> {
        int n = 0;
        boolean inWord = false;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (Character.isLetterOrDigit(c)) {
                if (!inWord) {
                    n++;
                }
                inWord = true;
            } else {
                inWord = false;
                if (!Character.isWhitespace(c)) {
                    n++;
                }
            }
        }
        return n;
    };

    private static String sha16(String s) throws Exception {
        byte[] d = MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8));
        return HexFormat.of().formatHex(d).substring(0, 16);
    }

    /**
     * Golden values from the Python generator (training/tasks.py) with the counter len(str) (characters), target
     * 2000, eval seed index 0 and two extra questions: the Java port must give the same instance exactly.
     */
    @Test
    void matchesThePythonGenerator() throws Exception {
        Object[][] golden = {
            {TaskKind.NIAH_SINGLE, 100002318000L, "7316642", 1827, "9fbe6f3c4acc0dda", List.of()},
            {TaskKind.NIAH_MULTIKEY, 200002618000L, "1996568", 1792, "6b0fa0adbb4fe3b3", List.of("6987282", "4516380")},
            {TaskKind.NIAH_MULTIVALUE, 300002918000L, "9123123, 9034445, 5612138, 5373943", 1785, "622adab232513101",
                List.of()},
            {TaskKind.NIAH_MULTIQUERY, 400003218000L, "9411494, 4360035, 5411593, 7602348", 1707, "2481bfaa93286866",
                List.of("4360035, 7602348", "4360035, 7602348")},
            {TaskKind.VT, 500003518000L, "ZAQJB, ZCWGJ, QQTTV, YJHPW, IWJFK", 1776, "d3d36766da441ff6",
                List.of("ECKTK, IVWOR, DGHMC, BBXGU, MRXLI")},
            {TaskKind.CWE, 600003818000L, "record, rested, faded, gladly, breeze", 1873, "048b0fab3387a102", List.of()},
            {TaskKind.QA, 700004118000L, "Cork", 1931, "49248e7e3a7d1d04", List.of("brown", "green")},
        };
        for (Object[] g : golden) {
            TaskKind kind = (TaskKind) g[0];
            long seed = RulerTasks.evalSeed(kind, 2000, 0);
            assertEquals((long) g[1], seed, kind + " seed");
            TaskInstance t = RulerTasks.build(kind, 2000, seed, String::length, 2);
            assertEquals(g[2], t.answer(), kind + " answer");
            assertEquals((int) g[3], t.context().length(), kind + " context length");
            assertEquals(g[4], sha16(t.context()), kind + " context hash");
            assertEquals(g[5], t.extraQa().stream().map(TaskInstance.QuestionAnswer::answer).toList(), kind + " extra");
        }
    }

    @Test
    void deterministicAndLengthTargeted() {
        for (TaskKind kind : TaskKind.values()) {
            for (int target : new int[] {512, 2048, 8192}) {
                TaskInstance a = RulerTasks.evalInstance(kind, target, 3, WORDS);
                TaskInstance b = RulerTasks.evalInstance(kind, target, 3, WORDS);
                assertEquals(a, b);
                int total = 1 + WORDS.apply(a.context()) + WORDS.apply(a.question());
                assertTrue(total <= target, kind + " " + target + ": " + total);
                assertTrue(total >= target - 40, kind + " " + target + ": only " + total);
                assertTrue(a.question().startsWith("\n"));
                assertFalse(a.answer().startsWith(" "));
                assertTrue(a.extraQa().isEmpty());
                assertNotEquals(a.context(), RulerTasks.evalInstance(kind, target, 4, WORDS).context());
            }
        }
    }

    @Test
    void answersAreInTheContextInCanonicalOrder() {
        TaskInstance mv = RulerTasks.evalInstance(TaskKind.NIAH_MULTIVALUE, 4096, 0, WORDS);
        int last = -1;
        for (String v : mv.answer().split(", ")) {
            int at = mv.context().indexOf("is: " + v + ".");
            assertTrue(at > last, "values in order of appearance");
            last = at;
        }
        TaskInstance single = RulerTasks.evalInstance(TaskKind.NIAH_SINGLE, 4096, 0, WORDS);
        assertTrue(single.context().contains("is: " + single.answer() + "."));
        assertTrue(single.context().startsWith(RulerTasks.PREFIX_NIAH));

        TaskInstance vt = RulerTasks.evalInstance(TaskKind.VT, 4096, 0, WORDS);
        List<String> chain = List.of(vt.answer().split(", "));
        assertEquals(5, chain.size());
        for (int h = 1; h < 5; h++) {
            assertTrue(vt.context().contains("VAR " + chain.get(h) + " = VAR " + chain.get(h - 1) + "."));
        }
        TaskInstance cwe = RulerTasks.evalInstance(TaskKind.CWE, 4096, 0, WORDS);
        String body = cwe.context().substring(RulerTasks.PREFIX_CWE.length());
        for (String w : cwe.answer().split(", ")) {
            long n = java.util.Arrays.stream(body.split("[ ,.]+")).filter(w::equals).count();
            assertTrue(n > 20, w + " appears " + n + " times");
        }
        TaskInstance qa = RulerTasks.evalInstance(TaskKind.QA, 4096, 0, WORDS);
        assertTrue(qa.context().contains(" " + qa.answer() + ".") || qa.context().contains(" " + qa.answer() + " at home."));
    }

    @Test
    void exactMatchNormalizes() {
        assertTrue(RulerTasks.exactMatch(TaskKind.NIAH_SINGLE, " 1234567 \n", "1234567"));
        assertFalse(RulerTasks.exactMatch(TaskKind.NIAH_SINGLE, "1234567.", "1234567"));
        assertTrue(RulerTasks.exactMatch(TaskKind.VT, " ABCDE,FGHIJ ,  KLMNO", "ABCDE, FGHIJ, KLMNO"));
        assertFalse(RulerTasks.exactMatch(TaskKind.VT, "FGHIJ, ABCDE, KLMNO", "ABCDE, FGHIJ, KLMNO"));
        assertEquals(TaskKind.CWE, TaskKind.of("cwe"));
    }
}
