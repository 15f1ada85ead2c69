package org.starflink.engine.eval;

import java.util.Locale;

/** The synthetic RULER-style task kinds of docs/tasks.md, in their canonical order (the order fixes eval seeds). */
public enum TaskKind {
    NIAH_SINGLE("niah_single", false),
    NIAH_MULTIKEY("niah_multikey", false),
    NIAH_MULTIVALUE("niah_multivalue", true),
    NIAH_MULTIQUERY("niah_multiquery", true),
    VT("vt", true),
    CWE("cwe", true),
    QA("qa", false);

    private final String id;
    private final boolean listAnswer;

    TaskKind(String id, boolean listAnswer) {
        this.id = id;
        this.listAnswer = listAnswer;
    }

    /** The name used in files and reports ("niah_single", "vt", ...). */
    public String id() {
        return id;
    }

    /** Whether the answer is a comma-separated list compared item by item in its canonical order. */
    public boolean listAnswer() {
        return listAnswer;
    }

    public static TaskKind of(String id) {
        for (TaskKind k : values()) {
            if (k.id.equals(id.toLowerCase(Locale.ROOT))) {
                return k;
            }
        }
        throw new IllegalArgumentException("unknown task kind: " + id);
    }
}
