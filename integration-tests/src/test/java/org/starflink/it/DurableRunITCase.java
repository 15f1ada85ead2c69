package org.starflink.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.starflink.engine.backend.BackendKind;
import org.starflink.engine.checkpoint.ModelRegistry;
import org.starflink.engine.forward.Transformer;
import org.starflink.engine.generate.SamplingParams;
import org.starflink.engine.model.Model;
import org.starflink.engine.star.BlockLayout;
import org.starflink.engine.star.LongContextGenerator;
import org.starflink.engine.testing.SharedModels;
import org.starflink.pipeline.cli.StarflinkCli;
import org.starflink.pipeline.client.FlinkRest;

/**
 * {@code starflink run} as a user runs it, in its own process, on a data directory: what was ingested survives a
 * clean stop (SIGTERM) and a kill -9, the next run restores the job's state (no block is encoded again) and comes
 * back on the same broker address, a second run on the same directory is refused, a re-ingest replaces the
 * document, a delete removes it, and a question can wait for a document that is still on its way.
 */
class DurableRunITCase {
    static final int BLOCK = 64;

    final Path work = Path.of("target", "durable-run-" + java.util.UUID.randomUUID()).toAbsolutePath();
    final Path data = work.resolve("data");
    final int webPort = freePort();
    CliProcess run;

    @AfterEach
    void stop() throws Exception {
        if (run != null && run.process.isAlive()) {
            run.process.destroyForcibly().waitFor();
        }
    }

    @Test
    void documentsSurviveAStopAndAKillAndTheToolSaysWhatItDid() throws Exception {
        Model model = SharedModels.stories260K();
        LongContextGenerator engine = new LongContextGenerator(model,
                new Transformer(ModelRegistry.backend(model, BackendKind.DJL)));
        String first = Corpus.document(1, 10);
        String second = Corpus.document(2, 14);
        Files.createDirectories(work);
        Files.writeString(work.resolve("first.txt"), first);
        Files.writeString(work.resolve("second.txt"), second);

        // 1. a fresh run; a second one on the same directory is refused and leaves nothing behind
        String bootstrap = start("run1", "--fresh");
        List<String> before = listing(data);
        Cli second1 = cli("run", "--data-dir", data.toString(), "--no-demo", "--web-port", "0",
                "--model", modelPath());
        second1.assertOneLineError(StarflinkCli.EXIT_CONFLICT, "another starflink run is using " + data,
                bootstrap);
        assertEquals(before, listing(data), "the refused run left nothing behind");

        // 2. ingest (relative path: against the caller's directory), ask; then a clean stop
        CliProcess ingest = CliProcess.start(work, "ingest", "ingest", "--bootstrap-servers", bootstrap,
                "--doc-id", "first", "first.txt");
        assertEquals(0, ingest.await(Duration.ofMinutes(2)), ingest.out() + ingest.err());
        assertEquals(2, ingest.out().lines().count(), "only the two result lines on stdout: " + ingest.out());
        assertTrue(ingest.out().contains("ready: " + blocks(engine, first) + " blocks, "
                + engine.contextTokens(first).length + " tokens"), ingest.out());
        String answerBefore = ask(bootstrap, "first", engine, first);
        awaitCheckpointed(bootstrap);
        run.process.destroy(); // SIGTERM, as Ctrl-C
        assertEquals(143, run.await(Duration.ofSeconds(60)), run.err());

        // 3. the next run restores and is back on the same address; nothing is encoded again
        assertEquals(bootstrap, start("run2"));
        assertTrue(run.out().contains("restoring the job's state from " + data.resolve("checkpoints")), run.out());
        assertEquals(answerBefore, ask(bootstrap, "first", engine, first));
        assertEquals(0, blocksEncoded(), "restored blocks are not encoded again");

        // 4. the same after kill -9
        Cli ingested2 = cli("ingest", "--bootstrap-servers", bootstrap, "--doc-id", "second", "second.txt");
        assertEquals(0, ingested2.exit, ingested2.all());
        String secondBefore = ask(bootstrap, "second", engine, second);
        awaitCheckpointed(bootstrap);
        run.process.destroyForcibly(); // SIGKILL
        run.await(Duration.ofSeconds(30));
        assertEquals(bootstrap, start("run3"));
        assertTrue(run.out().contains("restoring the job's state from"), run.out());
        assertEquals(secondBefore, ask(bootstrap, "second", engine, second));
        assertEquals(answerBefore, ask(bootstrap, "first", engine, first));
        assertEquals(0, blocksEncoded(), "restored blocks are not encoded again");

        // 5. a re-ingest under the same id is a new version that replaces the document; a delete removes it
        Cli reingested = cli("ingest", "--bootstrap-servers", bootstrap, "--doc-id", "first", "second.txt");
        assertEquals(0, reingested.exit, reingested.all());
        ask(bootstrap, "first", engine, second);
        Cli deleted = cli("delete", "--bootstrap-servers", bootstrap, "--doc-id", "first");
        assertEquals(0, deleted.exit, deleted.all());
        cli("ask", "--bootstrap-servers", bootstrap, "--doc-id", "first", "--max-new-tokens", "4", "Lily said")
                .assertOneLineError(StarflinkCli.EXIT_INPUT_ERROR, "unknown document first");

        // 6. a question that waits for a document still on its way, and one that waits in vain
        CompletableFuture<Cli> waiting = CompletableFuture.supplyAsync(() -> cli("ask", "--bootstrap-servers",
                bootstrap, "--doc-id", "third", "--wait-complete", "120", "--max-new-tokens", "4", "Lily said"));
        Thread.sleep(1000);
        assertEquals(0, cli("ingest", "--bootstrap-servers", bootstrap, "--doc-id", "third", "--wait-seconds", "0",
                "first.txt").exit);
        Cli waited = waiting.get();
        assertEquals(0, waited.exit, waited.all());
        assertTrue(waited.err.contains("over all " + blocks(engine, first) + " blocks"), waited.all());
        cli("ask", "--bootstrap-servers", bootstrap, "--doc-id", "nowhere", "--wait-complete", "1", "Who?")
                .assertOneLineError(StarflinkCli.EXIT_INPUT_ERROR, "document nowhere is still incomplete after "
                        + "waiting 1000 ms");

        // 7. the Web UI's log tab has the job's log; the run's stdout has no log lines, its log no name collision
        HttpResponse<String> log = HttpClient.newHttpClient().send(HttpRequest.newBuilder(
                URI.create("http://localhost:" + webPort + "/jobmanager/log")).build(),
                HttpResponse.BodyHandlers.ofString());
        assertEquals(200, log.statusCode());
        assertTrue(log.body().contains("starflink"), "the JobManager log tab shows the job's log");
        run.process.destroy();
        run.await(Duration.ofSeconds(60));
        for (String line : run.out().lines().toList()) {
            assertFalse(line.matches(".*\\b(WARN|INFO|ERROR)\\b.*"), "a log line on stdout: " + line);
        }
        String everything = run.err() + Files.readString(data.resolve("log").resolve("starflink.log"));
        assertFalse(everything.contains("Name collision"), "the metric name collision warning is silenced");
    }

    /** Starts {@code starflink run} on the data directory; returns the broker address it prints. */
    private String start(String name, String... extra) throws Exception {
        List<String> args = new java.util.ArrayList<>(List.of("run", "--data-dir", data.toString(), "--no-demo",
                "--web-port", String.valueOf(webPort), "--model", modelPath(), "--block-size", String.valueOf(BLOCK),
                "-D", "starflink.allow-beyond-window=true", "-D", "execution.checkpointing.interval=500 ms"));
        args.addAll(List.of(extra));
        run = CliProcess.start(work, name, args.toArray(String[]::new));
        run.awaitLine(line -> line.startsWith("running; Ctrl-C"), Duration.ofMinutes(2));
        String line = run.awaitLine(l -> l.startsWith("embedded Kafka broker: "), Duration.ofSeconds(1));
        return line.substring("embedded Kafka broker: ".length()).split(" ")[0];
    }

    /**
     * Asks greedily for 8 tokens; checks the answer covered the whole document {@code text} and is the engine's
     * single-process Star answer over it (the job's block size; the anchor, by default, one block).
     */
    private String ask(String bootstrap, String docId, LongContextGenerator engine, String text) {
        Cli asked = cli("ask", "--bootstrap-servers", bootstrap, "--doc-id", docId, "--max-new-tokens", "8",
                "--timeout", "120", "Lily said");
        assertEquals(0, asked.exit, asked.all());
        int tokens = engine.contextTokens(text).length;
        assertTrue(asked.err.contains("(" + tokens + " tokens)") && asked.err.contains("the whole document"),
                asked.all());
        String expected = engine.generate(engine.contextTokens(text), engine.questionTokens("Lily said"),
                new BlockLayout(BLOCK, BLOCK), SamplingParams.greedy(8), true, t -> { }).text();
        assertEquals(expected.strip(), asked.out.strip(), "the answer to 'Lily said' about " + docId);
        return asked.out;
    }

    /** Until the job's sources committed the end of the documents topic, i.e. a checkpoint covers it. */
    private void awaitCheckpointed(String bootstrap) throws Exception {
        try (KafkaClient kafka = new KafkaClient(bootstrap)) {
            long deadline = System.nanoTime() + Duration.ofMinutes(1).toNanos();
            while (!kafka.committedToEnd("starflink", "documents") || !kafka.committedToEnd("starflink", "questions")) {
                assertTrue(System.nanoTime() < deadline, "no checkpoint covers the documents");
                Thread.sleep(200);
            }
        }
    }

    private double blocksEncoded() throws Exception {
        Thread.sleep(2500); // Flink's REST metrics are fetched every second in starflink run
        FlinkRest rest = new FlinkRest("http://localhost:" + webPort);
        String job = rest.runningJob("starflink").orElseThrow();
        return rest.sum(job, rest.vertex(job, "Context blocks").orElseThrow(), "starflink.block.blocksEncoded");
    }

    private static int blocks(LongContextGenerator engine, String text) {
        return (engine.contextTokens(text).length + BLOCK - 1) / BLOCK;
    }

    private static String modelPath() {
        return SharedModels.stories260KDir().resolve("stories260K.bin").toString();
    }

    private static List<String> listing(Path dir) throws Exception {
        try (Stream<Path> files = Files.list(dir)) {
            return files.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    private static int freePort() {
        try (ServerSocket socket = new ServerSocket(0)) {
            return socket.getLocalPort();
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    /** The command line in this JVM, in the test's working directory {@link #work} for relative paths. */
    private Cli cli(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        String[] resolved = args.clone();
        for (int i = 0; i < resolved.length; i++) { // this JVM's directory is the module's: resolve like a shell
            if (resolved[i].endsWith(".txt")) {
                resolved[i] = work.resolve(resolved[i]).toString();
            }
        }
        int exit = StarflinkCli.run(resolved, new PrintWriter(out, true), new PrintWriter(err, true));
        return new Cli(exit, out.toString(), err.toString());
    }

    record Cli(int exit, String out, String err) {
        String all() {
            return "exit " + exit + "\nstdout:\n" + out + "\nstderr:\n" + err;
        }

        void assertOneLineError(int expectedExit, String... fragments) {
            assertEquals(expectedExit, exit, all());
            List<String> lines = err.lines().toList();
            assertEquals(1, lines.size(), all());
            assertTrue(lines.get(0).startsWith("error: "), all());
            for (String fragment : fragments) {
                assertTrue(lines.get(0).contains(fragment), "lacks '" + fragment + "': " + all());
            }
        }
    }
}
