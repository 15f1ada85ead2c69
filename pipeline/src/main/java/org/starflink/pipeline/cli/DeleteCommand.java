package org.starflink.pipeline.cli;

import java.util.concurrent.Callable;
import org.starflink.pipeline.client.StarflinkClient;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/** {@code starflink delete}: removes a document from the job (its blocks and catalog). */
@Command(name = "delete", description = "Delete a document: the job drops its blocks and forgets it; questions "
        + "already running on it finish.")
final class DeleteCommand implements Callable<Integer> {
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
            description = "Delete only if the document's version is at most V. Default: whatever its version.")
    Long version;

    @Option(names = "--reason", paramLabel = "TEXT", description = "Free text for the job's log.")
    String reason;

    @Override
    public Integer call() {
        long upTo = version != null ? version : Long.MAX_VALUE;
        try (StarflinkClient client = kafka.client()) {
            client.deleteDocument(docId, upTo, reason);
        }
        spec.commandLine().getOut().printf("document %s: delete (%s) confirmed by %s%n", docId,
                version != null ? "versions <= " + version : "every version", kafka.bootstrapServers);
        return 0;
    }
}
