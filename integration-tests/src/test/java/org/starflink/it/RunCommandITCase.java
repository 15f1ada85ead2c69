package org.starflink.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.starflink.pipeline.cli.StarflinkCli;

/**
 * The README's first command, in-process: {@code starflink run --exit-after-demo} starts an embedded Kafka
 * broker and a local Flink cluster, streams the demo documents in and answers the demo questions live, with our
 * own model (the default): each answer is the expected one, over the whole document.
 */
class RunCommandITCase {
    /** "A: answer" then "   [stop; expected: X; coverage; time to first token N ms]". */
    private static final Pattern ANSWER = Pattern.compile(
            "A: (.*)\\R\\s+\\[(\\w+); expected: (.*?); (.*?); time to first token");

    @Test
    void theEmbeddedDemoAnswersItsQuestionsCorrectly() {
        Path data = Path.of("target", "run-" + java.util.UUID.randomUUID());
        Path model = Path.of(System.getProperty("starflink.project.dir", ".."), "models/starflink-synth-14m");
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int exit = StarflinkCli.run(new String[] {"run", "--exit-after-demo", "--model", model.toString(),
                "--web-port", "0", "--data-dir", data.toString()},
                new PrintWriter(out, true), new PrintWriter(err, true));
        String printed = out.toString();
        assertEquals(0, exit, printed + err);
        assertTrue(printed.contains("embedded Kafka broker: "), printed);
        assertTrue(printed.contains("demo: streamed document 'demo-needle'"), printed);
        assertTrue(printed.contains("demo: streamed document 'demo-facts'"), printed);
        assertFalse(printed.contains("error:"), printed);
        List<String> answers = new ArrayList<>();
        Matcher answer = ANSWER.matcher(printed);
        while (answer.find()) {
            answers.add(answer.group(1));
            String expected = answer.group(3);
            assertEquals(expected, answer.group(1).strip(), "the demo's answer, in " + printed);
            assertTrue(answer.group(4).contains("the whole document"), "the demo waits for its documents: "
                    + printed);
        }
        assertEquals(2, answers.size(), "two demo answers in " + printed);
    }
}
