package org.starflink.engine.eval;

/**
 * Exact match as docs/tasks.md defines it: the generated text, cut at its first newline and stripped of
 * surrounding whitespace, equals the expected answer stripped of surrounding whitespace.
 */
public final class ExactMatch {
    private ExactMatch() {
    }

    public static boolean matches(String generated, String expected) {
        String text = generated;
        int newline = text.indexOf('\n');
        if (newline >= 0) {
            text = text.substring(0, newline);
        }
        return text.strip().equals(expected.strip());
    }
}
