package org.starflink.pipeline.cli;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/** The demo of {@code starflink run}: a document with planted facts (resources/demo) and questions about them. */
final class DemoDocument {
    record Qa(String question, String answer) {
    }

    private DemoDocument() {
    }

    static String text() {
        return resource("demo/document.txt");
    }

    /** demo/questions.tsv: one "question TAB expected answer" per line. */
    static List<Qa> questions() {
        List<Qa> questions = new ArrayList<>();
        for (String line : resource("demo/questions.tsv").split("\n")) {
            String[] parts = line.split("\t");
            if (parts.length == 2) {
                questions.add(new Qa(parts[0].replace("\\n", "\n"), parts[1]));
            }
        }
        return questions;
    }

    private static String resource(String name) {
        try (InputStream in = DemoDocument.class.getClassLoader().getResourceAsStream(name)) {
            if (in == null) {
                throw new IllegalStateException("missing resource " + name);
            }
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
