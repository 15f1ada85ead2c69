package org.starflink.pipeline.cli;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import org.starflink.engine.EngineException;
import org.starflink.pipeline.client.ClientTimeoutException;
import org.starflink.pipeline.client.StarflinkClient;
import org.starflink.schemas.AnswerToken;
import org.starflink.schemas.Coverage;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/**
 * {@code starflink ingest}: streams files into the documents topic as one document, chunk by chunk, every chunk
 * confirmed by the broker; then waits until the job has encoded the whole document and says how big it is.
 */
@Command(name = "ingest", description = "Stream a document (the files, concatenated) into the job as ordered chunks, "
        + "then wait until the job has encoded all of it.")
final class IngestCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    // Not mixinStandardHelpOptions: its -V/--version would collide with the document's --version.
    @Option(names = {"-h", "--help"}, usageHelp = true, description = "Show this help message and exit.")
    boolean help;

    @Mixin
    KafkaOptions kafka = new KafkaOptions();

    @Option(names = "--doc-id", paramLabel = "ID", required = true, description = "The document's id.")
    String docId;

    @Option(names = "--version", paramLabel = "V",
            description = "Document version. A higher version replaces the document (questions already running "
                    + "finish on the old one); a lower or equal one is ignored by the job. Default: the current "
                    + "time in milliseconds, so that ingesting the same id again replaces the document.")
    Long version;

    @Option(names = "--chunk-chars", paramLabel = "N", defaultValue = "2000",
            description = "About this many characters per chunk. Default: ${DEFAULT-VALUE}.")
    int chunkChars;

    @Option(names = "--wait-seconds", paramLabel = "S", defaultValue = "300",
            description = "Then wait at most S seconds until the job has encoded every block of the document "
                    + "(0: return once the broker has confirmed every chunk). Default: ${DEFAULT-VALUE}.")
    int waitSeconds;

    @Parameters(paramLabel = "FILE", arity = "1..*", description = "UTF-8 text files.")
    List<Path> files = new ArrayList<>();

    @Override
    public Integer call() {
        if (chunkChars < 1 || waitSeconds < 0) {
            throw new StarflinkCli.UsageException("need --chunk-chars >= 1 and --wait-seconds >= 0");
        }
        StringBuilder text = new StringBuilder();
        for (Path file : files) {
            text.append(text.length() == 0 ? "" : "\n").append(GenerateCommand.read(file));
        }
        long v = version != null ? version : System.currentTimeMillis();
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        try (StarflinkClient client = kafka.client()) {
            List<String> chunks = StarflinkClient.chunks(text.toString(), chunkChars);
            ProgressBar bar = new ProgressBar(err, "document " + docId + " v" + v, chunks.size(), "chunks");
            client.sendDocument(docId, v, chunks, bar::update);
            bar.done();
            out.printf("document %s version %d: %d characters in %d chunks, confirmed by %s%n", docId, v,
                    text.length(), chunks.size(), kafka.bootstrapServers);
            if (waitSeconds == 0) {
                return 0;
            }
            err.printf("waiting for the job to encode document %s (at most %d s) ...%n", docId, waitSeconds);
            long start = System.nanoTime();
            AnswerToken probe;
            try {
                probe = client.awaitDocument(docId, Duration.ofSeconds(waitSeconds));
            } catch (ClientTimeoutException e) {
                throw new ClientTimeoutException("document " + docId + " was sent, but no starflink job reported it "
                        + "encoded within " + waitSeconds + " s (is one reading topic questions at "
                        + kafka.bootstrapServers + "?)");
            }
            Coverage coverage = probe.getCoverage();
            if (probe.getError() != null) {
                if (probe.getError().contains("still incomplete")) {
                    throw new ClientTimeoutException("document " + docId + " was not encoded within " + waitSeconds
                            + " s: " + probe.getError());
                }
                throw new EngineException("document " + docId + " version " + v + " cannot be answered: "
                        + probe.getError());
            }
            if (coverage == null || coverage.getVersion() != v) {
                // a newer version of the same id arrived meanwhile (another ingest): report what the job has
                out.printf("document %s: the job now answers over version %s%n", docId,
                        coverage == null ? "?" : coverage.getVersion());
                return 0;
            }
            out.printf("document %s version %d ready: %d blocks, %d tokens, encoded in %.1f s%n", docId, v,
                    coverage.getBlocks(), coverage.getTokens(), (System.nanoTime() - start) / 1e9);
        }
        return 0;
    }

    /** One line, redrawn: {@code label [#####.....] 12/40 chunks 30% ETA 3 s}. */
    static final class ProgressBar {
        private static final int WIDTH = 30;
        private final PrintWriter err;
        private final String label;
        private final int total;
        private final String unit;
        private final long start = System.nanoTime();

        ProgressBar(PrintWriter err, String label, int total, String unit) {
            this.err = err;
            this.label = label;
            this.total = total;
            this.unit = unit;
        }

        void update(int done) {
            double fraction = total == 0 ? 1 : (double) done / total;
            int filled = (int) Math.round(fraction * WIDTH);
            double elapsed = (System.nanoTime() - start) / 1e9;
            String eta = done == 0 ? "?" : String.format("%.0f s", elapsed / done * (total - done));
            err.printf("\r%s [%s%s] %d/%d %s %3.0f%% ETA %s ", label, "#".repeat(filled), ".".repeat(WIDTH - filled),
                    done, total, unit, 100 * fraction, eta).flush();
        }

        void done() {
            err.println();
        }
    }
}
