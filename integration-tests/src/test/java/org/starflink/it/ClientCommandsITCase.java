package org.starflink.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.starflink.kafka.EmbeddedKafka;
import org.starflink.pipeline.cli.StarflinkCli;
import org.starflink.schemas.Topics;

/**
 * The client commands as separate processes, as a user starts them: failures are one line on stderr with the
 * documented exit code, within a bounded time, and stdout carries nothing but results (no Kafka client logs).
 */
class ClientCommandsITCase {
    final Path work = Path.of("target", "client-" + java.util.UUID.randomUUID()).toAbsolutePath();

    @Test
    void ingestToADeadBrokerFailsFastWithOneLineNamingTheBrokerAndTheCause() throws Exception {
        Files.createDirectories(work);
        Files.writeString(work.resolve("doc.txt"), "Once upon a time there was a document. ".repeat(200));
        long start = System.nanoTime();
        CliProcess ingest = CliProcess.start(work, "ingest", "ingest", "--bootstrap-servers", "127.0.0.1:1",
                "--doc-id", "d", "--chunk-chars", "100", "doc.txt"); // relative: the process's directory
        int exit = ingest.await(Duration.ofSeconds(60));
        double seconds = (System.nanoTime() - start) / 1e9;
        System.out.printf("ingest to a dead broker: exit %d after %.1f s (JVM start included)%n", exit, seconds);
        assertEquals(StarflinkCli.EXIT_UNAVAILABLE, exit, ingest.err());
        assertEquals(List.of("error: cannot reach Kafka at 127.0.0.1:1: Connection refused"),
                ingest.err().lines().toList());
        assertEquals("", ingest.out(), "nothing on stdout");
        assertTrue(seconds < 15, "bounded: " + seconds + " s");
    }

    @Test
    void askHonoursItsTimeoutAndAMissingTopicIsNamed() throws Exception {
        try (EmbeddedKafka kafka = EmbeddedKafka.builder().topic(Topics.QUESTIONS, 1).topic(Topics.ANSWERS, 1)
                .start()) {
            long start = System.nanoTime();
            CliProcess ask = CliProcess.start(work, "ask", "ask", "--bootstrap-servers", kafka.bootstrapServers(),
                    "--doc-id", "d", "--timeout", "3", "Who?"); // no job reads the questions
            int exit = ask.await(Duration.ofSeconds(60));
            double seconds = (System.nanoTime() - start) / 1e9;
            System.out.printf("ask --timeout 3 without a job: exit %d after %.1f s (JVM start included)%n", exit,
                    seconds);
            assertEquals(StarflinkCli.EXIT_TIMEOUT, exit, ask.err());
            List<String> lines = ask.err().lines().toList();
            assertEquals(1, lines.size(), ask.err());
            assertTrue(lines.get(0).matches("error: no answer to question .* within 3 s \\(is a starflink job "
                    + "reading topic questions at .*\\?\\)"), lines.get(0));
            assertTrue(ask.out().isBlank(), ask.out());
            assertTrue(seconds < 3 + 10, "the timeout is honoured: " + seconds + " s");

            CliProcess delete = CliProcess.start(work, "delete", "delete", "--bootstrap-servers",
                    kafka.bootstrapServers(), "--doc-id", "d");
            assertEquals(StarflinkCli.EXIT_UNAVAILABLE, delete.await(Duration.ofSeconds(60)), delete.err());
            assertEquals(List.of("error: topic documents does not exist at " + kafka.bootstrapServers()
                    + " (is this the job's Kafka? is --topic-prefix right?)"), delete.err().lines().toList());
        }
    }
}
