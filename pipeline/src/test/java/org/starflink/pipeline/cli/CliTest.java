package org.starflink.pipeline.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.starflink.engine.testing.SharedModels;
import org.starflink.schemas.Coverage;
import picocli.CommandLine;

/** The command line's promises that need no Kafka: help everywhere, one-line errors, the task files. */
class CliTest {

    static Stream<String> subcommands() {
        return new CommandLine(new StarflinkCli()).getSubcommands().keySet().stream();
    }

    @ParameterizedTest(name = "{0} --help")
    @MethodSource("subcommands")
    void everySubcommandHasHelp(String name) {
        for (String flag : new String[] {"--help", "-h"}) {
            CliRunner result = CliRunner.run(name, flag);
            assertEquals(0, result.exitCode(), name + " " + flag + ": " + result.err());
            assertTrue(result.out().startsWith("Usage: starflink " + name), result.out());
            assertTrue(result.err().isEmpty(), result.err());
        }
    }

    @Test
    void aMissingFileIsOneLineAndExitCodeOne() {
        CliRunner.run("ingest", "--bootstrap-servers", "127.0.0.1:1", "--doc-id", "d", "no-such-file.txt")
                .assertOneLineError(StarflinkCli.EXIT_INPUT_ERROR, "no such file: no-such-file.txt");
    }

    @Test
    void anUnreachableBrokerIsOneLineNamingItAndTheCauseQuickly() {
        for (String[] args : new String[][] {{"ask", "--doc-id", "d", "why?"}, {"delete", "--doc-id", "d"}}) {
            long start = System.nanoTime();
            String[] full = Stream.concat(Stream.of(args), Stream.of("--bootstrap-servers", "127.0.0.1:1"))
                    .toArray(String[]::new);
            CliRunner.run(full).assertOneLineError(StarflinkCli.EXIT_UNAVAILABLE,
                    "cannot reach Kafka at 127.0.0.1:1", "Connection refused");
            assertTrue(System.nanoTime() - start < 5_000_000_000L, args[0] + " took too long");
        }
    }

    @Test
    void aPortInUseIsOneLineAndExitCodeFiveAndLeavesNothingRunning(@TempDir Path dir) throws Exception {
        try (java.net.ServerSocket taken = new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            int port = taken.getLocalPort();
            Path data = dir.resolve("new");
            CliRunner.run("run", "--data-dir", data.toString(), "--web-port", String.valueOf(port), "--no-demo",
                    "--model", SharedModels.stories260KDir().resolve("stories260K.bin").toString())
                    .assertOneLineError(StarflinkCli.EXIT_CONFLICT, "port " + port + " is in use",
                            "Flink Web UI");
            assertFalse(Files.exists(data), "the refused run left no data directory behind");
        }
    }

    @Test
    void runAttachedToAnUnreachableKafkaSaysSoInOneLine(@TempDir Path dir) {
        CliRunner.run("run", "--data-dir", dir.toString(), "--web-port", "0", "--no-demo", "--bootstrap-servers",
                "127.0.0.1:1", "--model", SharedModels.stories260KDir().resolve("stories260K.bin").toString())
                .assertOneLineError(StarflinkCli.EXIT_UNAVAILABLE, "cannot reach Kafka at 127.0.0.1:1");
    }

    @Test
    void ingestProgressShowsTheTotalABarAndAnEta() {
        java.io.StringWriter text = new java.io.StringWriter();
        IngestCommand.ProgressBar bar = new IngestCommand.ProgressBar(new java.io.PrintWriter(text, true),
                "document d v1", 10, "chunks");
        bar.update(0);
        bar.update(5);
        bar.done();
        String[] frames = text.toString().split("\r");
        assertTrue(frames[1].startsWith("document d v1 [" + ".".repeat(30) + "] 0/10 chunks   0% ETA ?"), frames[1]);
        assertTrue(frames[2].matches("document d v1 \\[#{15}\\.{15}\\] 5/10 chunks  50% ETA \\d+ s \n"),
                frames[2]);
    }

    @Test
    void askSaysWhatTheAnswerCovered() {
        assertEquals("over all 4 blocks (2000 tokens) of version 7, the whole document",
                AskCommand.describe(new Coverage(7L, 4, 2000, true)));
        String partial = AskCommand.describe(new Coverage(7L, 1, 512, false));
        assertTrue(partial.startsWith("WARNING: the document was still streaming in; this answer covers only its "
                + "first 1 blocks (512 tokens) of version 7"), partial);
    }

    @Test
    void theTaskCommandWritesAnInstanceOfTheBuiltInSuite(@TempDir Path dir) throws Exception {
        Path out = dir.resolve("niah");
        CliRunner result = CliRunner.run("task", "--kind", "niah_single", "--length", "400", "--out", out.toString(),
                "--model", SharedModels.stories260KDir().resolve("stories260K.bin").toString());
        assertEquals(0, result.exitCode(), result.err());
        String context = Files.readString(out.resolve("context.txt"));
        String question = Files.readString(out.resolve("question.txt"));
        String answer = Files.readString(out.resolve("answer.txt")).strip();
        assertFalse(answer.isEmpty());
        assertTrue(context.contains(answer), "the needle is in the haystack");
        assertTrue(question.startsWith("\n"), "the question as the model was trained on it");
        assertTrue(result.out().contains("--question-file " + out.resolve("question.txt")), result.out());
        CliRunner.run("task", "--kind", "nonsense").assertOneLineError(StarflinkCli.EXIT_USAGE,
                "unknown task kind: nonsense");
    }

    @Test
    void aSecondRunOnTheSameDataDirectoryIsRefused(@TempDir Path dir) {
        try (DataDirectory first = DataDirectory.open(dir, false)) {
            first.savePorts(12345, 12346);
            StarflinkCli.Failure refused = org.junit.jupiter.api.Assertions.assertThrows(StarflinkCli.Failure.class,
                    () -> DataDirectory.open(dir, false));
            assertEquals(StarflinkCli.EXIT_CONFLICT, refused.exitCode);
            assertTrue(refused.getMessage().contains("another starflink run is using " + dir.toAbsolutePath()
                    + " (its broker: 127.0.0.1:12345)"), refused.getMessage());
        }
        DataDirectory.open(dir, false).close(); // free again once the first let go
    }

    @Test
    void theNewestCompletedCheckpointIsRestoredAndFreshStartsEmpty(@TempDir Path dir) throws Exception {
        Path older = checkpoint(dir, "job-a", 7, true, 1_000);
        Path newest = checkpoint(dir, "job-b", 2, true, 3_000);
        checkpoint(dir, "job-b", 3, false, 5_000); // in progress when the process died: no _metadata
        checkpoint(dir, "job-c", 1, true, 2_000);
        try (DataDirectory data = DataDirectory.open(dir, false)) {
            assertEquals(newest, data.latestCheckpoint().orElseThrow());
            data.pruneCheckpointsExcept(newest);
            assertFalse(Files.exists(older.getParent()), "older runs' checkpoints are deleted");
            assertTrue(Files.exists(newest));
            data.savePorts(1, 2);
            Files.createDirectories(data.kafka());
        }
        try (DataDirectory data = DataDirectory.open(dir, true)) {
            assertTrue(data.latestCheckpoint().isEmpty());
            assertFalse(Files.exists(data.kafka()));
            assertTrue(data.savedPort(DataDirectory.BROKER_PORT).isEmpty());
        }
    }

    private static Path checkpoint(Path dataDir, String job, int n, boolean complete, long modifiedMs)
            throws Exception {
        Path chk = dataDir.resolve("checkpoints").resolve(job).resolve("chk-" + n);
        Files.createDirectories(chk);
        if (complete) {
            Path metadata = Files.writeString(chk.resolve("_metadata"), "m");
            Files.setLastModifiedTime(metadata, java.nio.file.attribute.FileTime.fromMillis(modifiedMs));
        }
        return chk;
    }
}
