package org.starflink.pipeline.cli;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import org.starflink.pipeline.client.FlinkRest;
import org.starflink.pipeline.client.StarflinkClient;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/** {@code starflink ingest}: streams files into the documents topic as one document, chunk by chunk. */
@Command(name = "ingest", mixinStandardHelpOptions = true,
        description = "Stream a document (the files, concatenated) into the job as ordered chunks.")
final class IngestCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Mixin
    KafkaOptions kafka = new KafkaOptions();

    @Option(names = "--doc-id", paramLabel = "ID", required = true, description = "The document's id.")
    String docId;

    @Option(names = "--version", paramLabel = "V", defaultValue = "1",
            description = "Document version; a higher one replaces the document. Default: ${DEFAULT-VALUE}.")
    long version;

    @Option(names = "--chunk-chars", paramLabel = "N", defaultValue = "2000",
            description = "About this many characters per chunk. Default: ${DEFAULT-VALUE}.")
    int chunkChars;

    @Option(names = "--rest-url", paramLabel = "URL", defaultValue = "http://localhost:8081",
            description = "Flink REST endpoint, to follow the blocks being encoded. Default: ${DEFAULT-VALUE}.")
    String restUrl;

    @Option(names = "--follow-seconds", paramLabel = "S", defaultValue = "60",
            description = "Follow encoding until no block was encoded for 15 s, at most this long (0: don't).")
    int followSeconds;

    @Parameters(paramLabel = "FILE", arity = "1..*", description = "UTF-8 text files.")
    List<Path> files = new ArrayList<>();

    @Override
    public Integer call() {
        if (chunkChars < 1) {
            throw new StarflinkCli.UsageException("--chunk-chars must be >= 1, got " + chunkChars);
        }
        StringBuilder text = new StringBuilder();
        for (Path file : files) {
            text.append(text.length() == 0 ? "" : "\n").append(GenerateCommand.read(file));
        }
        var out = spec.commandLine().getOut();
        BlockProgress progress = BlockProgress.connect(restUrl);
        try (StarflinkClient client = kafka.client()) {
            int chunks = client.sendDocument(docId, version, text.toString(), chunkChars,
                    sent -> out.printf("\rchunks sent: %d", sent).flush());
            out.printf("%ndocument %s v%d: %d characters in %d chunks sent to %s%n", docId, version, text.length(),
                    chunks, kafka.bootstrapServers);
        }
        if (followSeconds > 0) {
            progress.follow(Duration.ofSeconds(followSeconds), out);
        }
        return 0;
    }

    /**
     * Follows the job's blocksEncoded counter (all block-operator subtasks) through Flink's REST API: the blocks
     * encoded since the ingest started. The counter is job-wide, so documents ingested at the same time count too.
     */
    private record BlockProgress(FlinkRest rest, String jobId, FlinkRest.Vertex vertex, double start, String problem) {
        static BlockProgress connect(String url) {
            try {
                FlinkRest rest = new FlinkRest(url);
                String job = rest.runningJob("starflink").orElse(null);
                FlinkRest.Vertex vertex = job == null ? null : rest.vertex(job, "Context blocks").orElse(null);
                if (vertex == null) {
                    return new BlockProgress(null, null, null, 0, "no running starflink job at " + url);
                }
                return new BlockProgress(rest, job, vertex, rest.sum(job, vertex, BLOCKS_ENCODED), null);
            } catch (IOException e) {
                return new BlockProgress(null, null, null, 0, "Flink REST not reachable at " + url);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return new BlockProgress(null, null, null, 0, "interrupted");
            }
        }

        void follow(Duration limit, java.io.PrintWriter out) {
            if (problem != null) {
                out.println("blocks encoded: not followed (" + problem + ")");
                return;
            }
            long deadline = System.nanoTime() + limit.toNanos();
            long lastChange = System.nanoTime();
            double last = start;
            try {
                while (System.nanoTime() < deadline && System.nanoTime() - lastChange < QUIET.toNanos()) {
                    double now = rest.sum(jobId, vertex, BLOCKS_ENCODED);
                    if (now != last) {
                        last = now;
                        lastChange = System.nanoTime();
                    }
                    out.printf("\rblocks encoded: %.0f", last - start).flush();
                    Thread.sleep(500);
                }
                out.println();
            } catch (IOException | InterruptedException e) {
                out.println("\nblocks encoded: lost the REST connection (" + e.getMessage() + ")");
            }
        }
    }

    private static final String BLOCKS_ENCODED = "starflink.block.blocksEncoded";
    /** Flink's REST metrics lag (fetcher interval, 1 s in `starflink run`, 10 s by default): wait this long. */
    private static final Duration QUIET = Duration.ofSeconds(15);
}
