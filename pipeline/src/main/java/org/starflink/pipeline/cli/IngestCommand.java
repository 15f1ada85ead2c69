package org.starflink.pipeline.cli;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
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
        try (StarflinkClient client = kafka.client()) {
            int chunks = client.sendDocument(docId, version, text.toString(), chunkChars,
                    sent -> out.printf("\rchunks sent: %d", sent).flush());
            out.printf("%ndocument %s v%d: %d characters in %d chunks sent to %s%n", docId, version, text.length(),
                    chunks, kafka.bootstrapServers);
        }
        return 0;
    }
}
