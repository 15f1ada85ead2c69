package org.starflink.engine.eval;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Function;
import java.util.function.Supplier;

/**
 * Synthetic RULER-style long-context tasks (needle in a haystack: single, multi-key, multi-value, multi-query;
 * variable tracking; common-words extraction; planted facts), in the context / question / answer split of
 * Star Attention. A port of the project's Python generator {@code training/tasks.py}: the same seed, target
 * length and token counter give the same instance, character for character (both use SplitMix64 and the same
 * word lists, {@code lexicon.txt}). The formats are specified in docs/tasks.md.
 *
 * <p>Lengths are hit with a token counter: 1 (BOS) + tokens(context) + tokens(question) stays at or under the
 * target, filled with filler sentences until the next one would not fit. The count of the context is taken as
 * count(prefix) + sum of count(" " + item) over its items, which equals the count of the whole text for
 * byte-level BPE tokenizers whose pre-tokenizer splits before spaces (the shipped one does).
 */
public final class RulerTasks {

    private RulerTasks() {
    }

    // ---------------------------------------------------------------- random numbers

    /** SplitMix64, identical to {@code tasks.SplitMix64} in Python. Not thread-safe. */
    public static final class Rng {
        private long state;

        public Rng(long seed) {
            this.state = seed;
        }

        public long next64() {
            state += 0x9E3779B97F4A7C15L;
            long z = state;
            z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
            z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
            return z ^ (z >>> 31);
        }

        /** (next64 >>> 1) % n. */
        public int below(int n) {
            return (int) ((next64() >>> 1) % n);
        }

        public double uniform() {
            return (next64() >>> 11) * 0x1.0p-53;
        }

        public <T> T choice(List<T> list) {
            return list.get(below(list.size()));
        }

        public <T> void shuffle(List<T> list) {
            for (int i = list.size() - 1; i > 0; i--) {
                int j = below(i + 1);
                Collections.swap(list, i, j);
            }
        }

        /** k distinct elements: partial Fisher-Yates on a copy, the first k. */
        public <T> List<T> sample(List<T> list, int k) {
            List<T> pool = new ArrayList<>(list);
            for (int i = 0; i < k; i++) {
                int j = i + below(pool.size() - i);
                Collections.swap(pool, i, j);
            }
            return new ArrayList<>(pool.subList(0, k));
        }

        /** An n-digit decimal number without a leading zero. */
        public String digits(int n) {
            StringBuilder sb = new StringBuilder().append(1 + below(9));
            for (int i = 1; i < n; i++) {
                sb.append(below(10));
            }
            return sb.toString();
        }

        public String upperWord(int n) {
            StringBuilder sb = new StringBuilder();
            for (int i = 0; i < n; i++) {
                sb.append((char) ('A' + below(26)));
            }
            return sb.toString();
        }
    }

    // ---------------------------------------------------------------- word lists and templates

    private static final Map<String, List<String>> LEX = loadLexicon();
    private static final List<String> NOUN = LEX.get("noun");
    private static final List<String> ADJ = LEX.get("adj");
    private static final List<String> VERB = LEX.get("verb");
    private static final List<String> VERBI = LEX.get("verbi");
    private static final List<String> PLACE = LEX.get("place");
    private static final List<String> ADV = LEX.get("adv");
    private static final List<String> TIME = LEX.get("time");
    /** Single words of noun+adj+verb+verbi+adv, deduplicated in first-occurrence order. */
    private static final List<String> CWE_POOL = cwePool();

    private static final List<String> TEMPLATES = List.of(
            "The {a} {n} {v} the {n} near the {p}.",
            "A {a} {n} {i} {d} by the {p}.",
            "{T}, the {n} {v} a {a} {n}.",
            "Nobody expected that the {n} would be so {a}.",
            "The {n} and the {n} {i} together {t}.",
            "Near the {p}, a {n} {v} the {a} {n} {d}.",
            "Everyone said the {n} was {a} and {a}.",
            "{T}, a {a} {n} {i}.",
            "The {n} {d} {v} every {n} in the {p}.",
            "It was a {a} day, and the {n} {i} {d}.",
            "Some {n}s {v} the {n} while others {i}.",
            "Beyond the {p} there was a {a} {n}.",
            "The old {n} {v} a {n} {t}.",
            "When the {n} {i}, the {a} {n} {v} the {n}.",
            "A {n} from the {p} {v} the {a} {n}.",
            "The {a} {n} had never {v} a {n} before.",
            "According to the {n}, the {p} was {a} {t}.",
            "They {v} the {a} {n} and {i} {d}.",
            "Every {n} near the {p} looked {a}.",
            "The {n} {i} because the {n} was {a}.",
            "Under the {a} sky, the {n} {v} the {n}.",
            "Few people knew why the {n} {i} {t}.",
            "The story of the {a} {n} began at the {p}.",
            "Later, the {n} {v} the {n} {d}.");

    static final String PREFIX_NIAH = "Some special magic numbers are hidden within the following text. "
            + "Make sure to memorize it. I will quiz you about the numbers afterwards.\n";
    static final String PREFIX_VT = "Memorize and track the chain(s) of variable assignment hidden in the following text.\n";
    static final String PREFIX_CWE = "Below is a list of words. Some of them appear more often than others. "
            + "Memorize the ones that appear most often.\n";
    static final String PREFIX_QA = "Read the following text carefully. Some facts about people are hidden in it. "
            + "Answer the question about them afterwards.\n";

    private static Map<String, List<String>> loadLexicon() {
        Map<String, List<String>> out = new HashMap<>();
        try (InputStream in = RulerTasks.class.getResourceAsStream("lexicon.txt")) {
            if (in == null) {
                throw new IllegalStateException("lexicon.txt missing from the classpath");
            }
            BufferedReader r = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8));
            List<String> cur = null;
            for (String line = r.readLine(); line != null; line = r.readLine()) {
                line = line.strip();
                if (line.isEmpty() || line.startsWith("#")) {
                    continue;
                }
                if (line.startsWith("[") && line.endsWith("]")) {
                    cur = new ArrayList<>();
                    out.put(line.substring(1, line.length() - 1), cur);
                    continue;
                }
                for (String w : line.split("\\s+")) {
                    cur.add(w.replace('_', ' '));
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        out.replaceAll((k, v) -> List.copyOf(v));
        return Map.copyOf(out);
    }

    private static List<String> cwePool() {
        Set<String> s = new LinkedHashSet<>();
        for (List<String> l : List.of(NOUN, ADJ, VERB, VERBI, ADV)) {
            for (String w : l) {
                if (!w.contains(" ")) {
                    s.add(w);
                }
            }
        }
        return List.copyOf(s);
    }

    /** One filler sentence: a random template with its slots filled left to right. */
    static String fillerSentence(Rng rng) {
        String tpl = TEMPLATES.get(rng.below(TEMPLATES.size()));
        StringBuilder out = new StringBuilder();
        int i = 0;
        while (i < tpl.length()) {
            char c = tpl.charAt(i);
            if (c == '{') {
                char slot = tpl.charAt(i + 1);
                i += 3;
                switch (slot) {
                    case 'n' -> out.append(rng.choice(NOUN));
                    case 'a' -> out.append(rng.choice(ADJ));
                    case 'v' -> out.append(rng.choice(VERB));
                    case 'i' -> out.append(rng.choice(VERBI));
                    case 'p' -> out.append(rng.choice(PLACE));
                    case 'd' -> out.append(rng.choice(ADV));
                    case 't' -> out.append(rng.choice(TIME));
                    case 'T' -> {
                        String t = rng.choice(TIME);
                        out.append(Character.toUpperCase(t.charAt(0))).append(t, 1, t.length());
                    }
                    default -> throw new IllegalStateException("bad slot " + slot);
                }
            } else {
                out.append(c);
                i++;
            }
        }
        return out.toString();
    }

    // ---------------------------------------------------------------- helpers shared by the tasks

    private static <T> List<T> distinct(Rng rng, Supplier<T> make, int k) {
        Set<T> seen = new HashSet<>();
        List<T> out = new ArrayList<>();
        while (out.size() < k) {
            T x = make.get();
            if (seen.add(x)) {
                out.add(x);
            }
        }
        return out;
    }

    private static String needle(String key, String value) {
        return "One of the special magic numbers for " + key + " is: " + value + ".";
    }

    private static String questionSingle(String key) {
        return "\nWhat is the special magic number for " + key + " mentioned in the provided text? "
                + "The special magic number for " + key + " mentioned in the provided text is";
    }

    private static String questionMulti(String keysText) {
        return "\nWhat are all the special magic numbers for " + keysText + " mentioned in the provided text? "
                + "The special magic numbers for " + keysText + " mentioned in the provided text are";
    }

    private static String questionVt(String value) {
        return "\nQuestion: Find all variables that are assigned the value " + value + " in the text above. "
                + "Answer: According to the chain(s) of variable assignment in the text above, "
                + "5 variables are assigned the value " + value + ", they are:";
    }

    static final String QUESTION_CWE = "\nQuestion: What are the 5 most common words in the above list? "
            + "Answer: The 5 words that appear most often in the list are:";

    private static String joinAnd(List<String> items) {
        if (items.size() == 1) {
            return items.get(0);
        }
        return String.join(", ", items.subList(0, items.size() - 1)) + " and " + items.get(items.size() - 1);
    }

    private static List<Integer> range(int n) {
        List<Integer> l = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            l.add(i);
        }
        return l;
    }

    /** prefix + " s1 s2 ..." with filler filling {@code budget} tokens and the needles at random gaps (in order). */
    private static String haystack(Rng rng, String prefix, List<String> needles, int budget,
                                   Function<String, Integer> count) {
        int used = count.apply(prefix);
        for (String s : needles) {
            used += count.apply(" " + s);
        }
        List<String> filler = new ArrayList<>();
        while (true) {
            String s = fillerSentence(rng);
            int c = count.apply(" " + s);
            if (used + c > budget) {
                break;
            }
            used += c;
            filler.add(s);
        }
        int[] gaps = new int[needles.size()];
        for (int g = 0; g < gaps.length; g++) {
            gaps[g] = rng.below(filler.size() + 1);
        }
        Arrays.sort(gaps);
        StringBuilder sb = new StringBuilder(prefix);
        int j = 0;
        for (int g = 0; g < gaps.length; g++) {
            for (; j < gaps[g]; j++) {
                sb.append(' ').append(filler.get(j));
            }
            sb.append(' ').append(needles.get(g));
        }
        for (; j < filler.size(); j++) {
            sb.append(' ').append(filler.get(j));
        }
        return sb.toString();
    }

    // ---------------------------------------------------------------- public API

    /**
     * A task instance whose 1 + tokens(context) + tokens(question) is at most {@code targetLength}.
     *
     * @param count maps a text to its number of tokens (no BOS/EOS)
     */
    public static TaskInstance build(TaskKind kind, int targetLength, long seed, Function<String, Integer> count) {
        return build(kind, targetLength, seed, count, 0);
    }

    /** As {@link #build(TaskKind, int, long, Function)}, with an encoder (text to token ids) instead of a counter. */
    public static TaskInstance buildWithEncoder(TaskKind kind, int targetLength, long seed,
                                                Function<String, int[]> encoder) {
        return build(kind, targetLength, seed, s -> encoder.apply(s).length, 0);
    }

    /** The instance at index {@code index} of the held-out evaluation set for (kind, targetLength). */
    public static TaskInstance evalInstance(TaskKind kind, int targetLength, int index, Function<String, Integer> count) {
        return build(kind, targetLength, evalSeed(kind, targetLength, index), count, 0);
    }

    /** Held-out evaluation seeds (training uses seeds at or above 2^62). */
    public static long evalSeed(TaskKind kind, int targetLength, int index) {
        return 1_000_003L * (kind.ordinal() + 1) * 100_000L + targetLength * 1_009L + index;
    }

    /**
     * As {@link #build(TaskKind, int, long, Function)}, plus up to {@code nExtra} further question/answer pairs
     * about the same context (used by training; evaluation uses 0).
     */
    public static TaskInstance build(TaskKind kind, int targetLength, long seed, Function<String, Integer> count,
                                     int nExtra) {
        Rng rng = new Rng(seed);
        List<TaskInstance.QuestionAnswer> extra = new ArrayList<>();
        String context;
        String question;
        String answer;
        switch (kind) {
            case NIAH_SINGLE, NIAH_MULTIKEY, NIAH_MULTIVALUE, NIAH_MULTIQUERY -> {
                Supplier<String> magicKey = () -> rng.choice(ADJ) + "-" + rng.choice(NOUN);
                Supplier<String> seven = () -> rng.digits(7);
                List<String> needles = new ArrayList<>();
                if (kind == TaskKind.NIAH_SINGLE) {
                    String key = distinct(rng, magicKey, 1).get(0);
                    String val = rng.digits(7);
                    needles.add(needle(key, val));
                    question = questionSingle(key);
                    answer = val;
                } else if (kind == TaskKind.NIAH_MULTIKEY) {
                    List<String> keys = distinct(rng, magicKey, 4);
                    List<String> vals = distinct(rng, seven, 4);
                    for (int i = 0; i < 4; i++) {
                        needles.add(needle(keys.get(i), vals.get(i)));
                    }
                    List<Integer> order = range(4);
                    rng.shuffle(order);
                    question = questionSingle(keys.get(order.get(0)));
                    answer = vals.get(order.get(0));
                    for (int t = 1; t < Math.min(4, 1 + nExtra); t++) {
                        extra.add(new TaskInstance.QuestionAnswer(questionSingle(keys.get(order.get(t))),
                                vals.get(order.get(t))));
                    }
                } else if (kind == TaskKind.NIAH_MULTIVALUE) {
                    String key = distinct(rng, magicKey, 1).get(0);
                    List<String> vals = distinct(rng, seven, 4);
                    for (String v : vals) {
                        needles.add(needle(key, v));
                    }
                    question = questionMulti(key);
                    answer = String.join(", ", vals);  // order of appearance
                } else {
                    List<String> keys = distinct(rng, magicKey, 4);
                    List<String> vals = distinct(rng, seven, 4);
                    for (int i = 0; i < 4; i++) {
                        needles.add(needle(keys.get(i), vals.get(i)));
                    }
                    List<Integer> order = range(4);
                    rng.shuffle(order);
                    List<String> qk = new ArrayList<>();
                    List<String> qv = new ArrayList<>();
                    for (int t : order) {
                        qk.add(keys.get(t));
                        qv.add(vals.get(t));
                    }
                    question = questionMulti(joinAnd(qk));
                    answer = String.join(", ", qv);  // question order
                    for (int e = 0; e < nExtra; e++) {
                        List<Integer> o2 = rng.sample(range(4), 2);
                        extra.add(new TaskInstance.QuestionAnswer(
                                questionMulti(joinAnd(List.of(keys.get(o2.get(0)), keys.get(o2.get(1))))),
                                vals.get(o2.get(0)) + ", " + vals.get(o2.get(1))));
                    }
                }
                if (kind != TaskKind.NIAH_MULTIVALUE) {
                    rng.shuffle(needles);
                }
                int budget = targetLength - 1 - count.apply(question);
                context = haystack(rng, PREFIX_NIAH, needles, budget, count);
            }
            case VT -> {
                List<String> names = distinct(rng, () -> rng.upperWord(5), 10);
                List<String> values = distinct(rng, () -> rng.digits(5), 2);
                List<List<String>> chains = List.of(names.subList(0, 5), names.subList(5, 10));
                List<List<String>> stmts = new ArrayList<>();
                for (int c = 0; c < 2; c++) {
                    List<String> ch = chains.get(c);
                    List<String> s = new ArrayList<>();
                    s.add("VAR " + ch.get(0) + " = " + values.get(c) + ".");
                    for (int h = 1; h < 5; h++) {
                        s.add("VAR " + ch.get(h) + " = VAR " + ch.get(h - 1) + ".");
                    }
                    stmts.add(s);
                }
                List<String> merged = new ArrayList<>();
                int i0 = 0;
                int i1 = 0;
                while (i0 < 5 || i1 < 5) {
                    if (i1 >= 5 || (i0 < 5 && rng.below(2) == 0)) {
                        merged.add(stmts.get(0).get(i0++));
                    } else {
                        merged.add(stmts.get(1).get(i1++));
                    }
                }
                int which = rng.below(2);
                question = questionVt(values.get(which));
                answer = String.join(", ", chains.get(which));
                if (nExtra > 0) {
                    extra.add(new TaskInstance.QuestionAnswer(questionVt(values.get(1 - which)),
                            String.join(", ", chains.get(1 - which))));
                }
                int budget = targetLength - 1 - count.apply(question);
                context = haystack(rng, PREFIX_VT, merged, budget, count);
            }
            case CWE -> {
                List<String> common = rng.sample(CWE_POOL, 5);
                Set<String> cset = new HashSet<>(common);
                List<String> rare = new ArrayList<>();
                for (String w : CWE_POOL) {
                    if (!cset.contains(w)) {
                        rare.add(w);
                    }
                }
                question = QUESTION_CWE;
                int budget = targetLength - 1 - count.apply(question);
                int used = count.apply(PREFIX_CWE) + 1;  // the final "." after the last word
                List<String> words = new ArrayList<>();
                while (true) {
                    String w = rng.uniform() < 0.3 ? common.get(rng.below(5)) : rare.get(rng.below(rare.size()));
                    int c = count.apply(" " + w + ",");
                    if (used + c > budget) {
                        break;
                    }
                    used += c;
                    words.add(w);
                }
                List<String> first = new ArrayList<>();
                for (String w : words) {
                    if (cset.contains(w) && !first.contains(w)) {
                        first.add(w);
                    }
                }
                for (String w : common) {
                    if (!first.contains(w)) {
                        first.add(w);
                    }
                }
                StringBuilder sb = new StringBuilder(PREFIX_CWE);
                for (int i = 0; i < words.size() - 1; i++) {
                    sb.append(' ').append(words.get(i)).append(',');
                }
                sb.append(' ').append(words.get(words.size() - 1)).append('.');
                context = sb.toString();
                answer = String.join(", ", first);
            }
            case QA -> {
                List<String> people = distinct(rng, () -> rng.choice(LEX.get("first")) + " " + rng.choice(LEX.get("last")), 4);
                List<String> facts = new ArrayList<>();
                List<TaskInstance.QuestionAnswer> qas = new ArrayList<>();
                for (String p : people) {
                    int rel = rng.below(4);
                    String v;
                    switch (rel) {
                        case 0 -> {
                            v = rng.choice(LEX.get("city"));
                            facts.add(p + " lives in the city of " + v + ".");
                            qas.add(new TaskInstance.QuestionAnswer("\nQuestion: In which city does " + p + " live? Answer:", v));
                        }
                        case 1 -> {
                            v = rng.choice(LEX.get("color"));
                            facts.add("The favorite color of " + p + " is " + v + ".");
                            qas.add(new TaskInstance.QuestionAnswer("\nQuestion: What is the favorite color of " + p + "? Answer:", v));
                        }
                        case 2 -> {
                            v = rng.choice(LEX.get("job"));
                            facts.add(p + " works as a " + v + ".");
                            qas.add(new TaskInstance.QuestionAnswer("\nQuestion: What does " + p + " work as? Answer:", v));
                        }
                        default -> {
                            v = rng.choice(LEX.get("animal"));
                            facts.add(p + " keeps a pet " + v + " at home.");
                            qas.add(new TaskInstance.QuestionAnswer(
                                    "\nQuestion: What kind of pet does " + p + " keep at home? Answer:", v));
                        }
                    }
                }
                List<Integer> order = range(4);
                rng.shuffle(order);
                question = qas.get(order.get(0)).question();
                answer = qas.get(order.get(0)).answer();
                for (int t = 1; t < Math.min(4, 1 + nExtra); t++) {
                    extra.add(qas.get(order.get(t)));
                }
                int budget = targetLength - 1 - count.apply(question);
                context = haystack(rng, PREFIX_QA, facts, budget, count);
            }
            default -> throw new IllegalArgumentException("unknown kind " + kind);
        }
        return new TaskInstance(kind, context, question, answer,
                extra.subList(0, Math.min(extra.size(), nExtra)), seed, targetLength);
    }

    // ---------------------------------------------------------------- scoring

    /** The normalized answer: the trimmed text, or for list kinds the trimmed comma-separated items in order. */
    public static List<String> normalize(TaskKind kind, String text) {
        String t = text.strip();
        if (!kind.listAnswer()) {
            return List.of(t);
        }
        List<String> items = new ArrayList<>();
        for (String s : t.split(",", -1)) {
            items.add(s.strip());
        }
        return items;
    }

    /** Exact match of a generated answer (decoded, up to EOS) against the expected canonical answer. */
    public static boolean exactMatch(TaskKind kind, String generated, String expected) {
        return normalize(kind, generated).equals(normalize(kind, expected));
    }
}
