package org.starflink.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.starflink.engine.testing.SharedModels;
import org.starflink.pipeline.cli.StarflinkCli;

/**
 * The README's first command, in-process: {@code starflink run --exit-after-demo} starts an embedded Kafka
 * broker and a local Flink cluster, streams the demo document in and answers the demo questions live.
 */
class RunCommandITCase {

    @Test
    void theEmbeddedDemoAnswersItsQuestions() {
        Path data = Path.of("target", "run-" + java.util.UUID.randomUUID());
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int exit = StarflinkCli.run(new String[] {"run", "--exit-after-demo",
                "--model", SharedModels.stories260KDir().resolve("stories260K.bin").toString(),
                "--block-size", "128", "--web-port", "0", "--data-dir", data.toString(),
                "-D", "starflink.allow-beyond-window=true"}, new PrintWriter(out, true), new PrintWriter(err, true));
        String printed = out.toString();
        assertEquals(0, exit, printed + err);
        assertTrue(printed.contains("embedded Kafka broker: "), printed);
        assertTrue(printed.contains("demo: streamed document 'demo-needle'"), printed);
        assertTrue(printed.contains("expected: "), printed);
        assertTrue(printed.contains("A: "), printed);
        assertTrue(printed.contains("time to first token"), printed);
        assertTrue(printed.contains("the whole document"), "the demo waits for its documents: " + printed);
        assertFalse(printed.contains("error:"), printed);
    }
}
