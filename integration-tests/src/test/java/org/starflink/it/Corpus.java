package org.starflink.it;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import org.starflink.engine.testing.SharedModels;
import org.starflink.schemas.DocumentChunk;
import org.starflink.schemas.DocumentEvent;
import org.starflink.schemas.Question;

/** Story-like documents for stories260K (its own reference story, sentences reshuffled) and their chunks. */
final class Corpus {
    private Corpus() {
    }

    /** A document of {@code sentences} sentences of the reference story, in a seed-dependent order. */
    static String document(long seed, int sentences) {
        try {
            String story = Files.readString(SharedModels.stories260KDir()
                    .resolve("reference/greedy_t0_256steps_runc.txt")).strip();
            List<String> parts = new ArrayList<>(List.of(story.split("(?<=[.!?\"])\\s+")));
            Collections.shuffle(parts, new Random(seed));
            StringBuilder text = new StringBuilder();
            for (int i = 0; i < sentences; i++) {
                text.append(i == 0 ? "" : " ").append(parts.get(i % parts.size()));
            }
            return text.toString();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The document as chunks of {@code size} characters: boundaries cut words in half on purpose. */
    static List<DocumentEvent> chunks(String docId, long version, String text, int size) {
        List<DocumentEvent> events = new ArrayList<>();
        int seq = 0;
        for (int start = 0; start < text.length(); start += size) {
            int end = Math.min(text.length(), start + size);
            events.add(DocumentEvent.newBuilder().setDocId(docId).setVersion(version)
                    .setBody(DocumentChunk.newBuilder().setSeq(seq++).setText(text.substring(start, end))
                            .setLast(end == text.length()).build())
                    .build());
        }
        return events;
    }

    static Question question(String questionId, String docId, String text, int maxNewTokens) {
        return Question.newBuilder().setQuestionId(questionId).setDocId(docId).setText(text)
                .setMaxNewTokens(maxNewTokens).setTemperature(0f).setTopP(1f).setSeed(0).setStop(List.of())
                .build();
    }
}
