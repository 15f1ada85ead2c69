package org.starflink.pipeline.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import org.starflink.engine.EngineException;
import org.starflink.engine.forward.Transformer;
import org.starflink.engine.generate.GenerationResult;
import org.starflink.engine.generate.SamplingParams;
import org.starflink.engine.model.Model;
import org.starflink.engine.star.AttentionMode;
import org.starflink.engine.tokenizer.IncrementalDecoder;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/** {@code starflink generate}: a prompt, a question over a context (Star or global), or a batch of requests. */
@Command(name = "generate", mixinStandardHelpOptions = true,
        description = {"Generate text in one process, without Flink.",
                "  Prompt:   --prompt TEXT | --prompt-file F",
                "  Question: --context-file F (--question TEXT | --question-file F) [--mode star|global]",
                "  Batch:    --requests in.jsonl [--out out.jsonl]"})
final class GenerateCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Mixin
    ModelOptions modelOptions = new ModelOptions();

    @Option(names = "--prompt", paramLabel = "TEXT", description = "Prompt text (tokenized with BOS first).")
    String prompt;

    @Option(names = "--prompt-file", paramLabel = "FILE", description = "Prompt read from a UTF-8 file.")
    Path promptFile;

    @Option(names = "--context-file", paramLabel = "FILE", description = "Long context (UTF-8) to answer over.")
    Path contextFile;

    @ArgGroup(exclusive = true)
    QuestionSource question;

    static final class QuestionSource {
        @Option(names = "--question", paramLabel = "TEXT", required = true)
        String text;

        @Option(names = "--question-file", paramLabel = "FILE", required = true)
        Path file;
    }

    @Option(names = "--mode", paramLabel = "star|global", defaultValue = "star",
            description = "Attention over the context. Default: ${DEFAULT-VALUE}.")
    String mode;

    @Option(names = "--block-size", paramLabel = "B", description = "Star block size in tokens (default N/4).")
    Integer blockSize;

    @Option(names = "--anchor-size", paramLabel = "A", description = "Star anchor size (default: block size).")
    Integer anchorSize;

    @Option(names = "--requests", paramLabel = "FILE", description = "JSONL requests, one per line.")
    Path requests;

    @Option(names = "--out", paramLabel = "FILE", description = "Batch output (default: stdout).")
    Path out;

    @Option(names = "--allow-beyond-window",
            description = "Run even when the prompt and answer exceed the model's trained context window.")
    boolean allowBeyondWindow;

    @Option(names = "--json", description = "Print one JSON object with tokens, text and timings.")
    boolean json;

    @Mixin
    SamplingOptions sampling = new SamplingOptions();

    @Override
    public Integer call() throws IOException {
        validateSources();
        SamplingParams params = sampling.params(); // bad numbers fail before the model loads
        Model model = modelOptions.load();
        RequestExecutor executor = new RequestExecutor(model, new Transformer(modelOptions.backend(model)),
                allowBeyondWindow);
        if (requests != null) {
            new BatchRunner(executor, sampling).run(requests, out, spec.commandLine().getOut());
            return 0;
        }
        GenerateRequest request = promptFile != null || prompt != null
                ? new GenerateRequest(null, prompt != null ? prompt : read(promptFile), null, null, null, null, null,
                        params)
                : new GenerateRequest(null, null, read(contextFile),
                        question.text != null ? question.text : read(question.file), AttentionMode.parse(mode),
                        blockSize, anchorSize, params);
        PrintWriter stdout = spec.commandLine().getOut();
        if (json) {
            stdout.println(JsonOutput.result(executor.execute(request, token -> { })));
            return 0;
        }
        IncrementalDecoder decoder = new IncrementalDecoder(model.tokenizer());
        GenerationResult result = executor.execute(request, token -> {
            if (!model.config().eosIds().contains(token)) {
                stdout.print(decoder.add(token));
                stdout.flush();
            }
        });
        stdout.println(decoder.flush());
        spec.commandLine().getErr().printf("[%d tokens, %s; prefill %.1f tok/s, decode %.1f tok/s, backend %s]%n",
                result.tokens().length, result.finishReason().wireName(),
                result.timings().prefillTokensPerSecond(), result.timings().decodeTokensPerSecond(),
                modelOptions.backend);
        return 0;
    }

    private void validateSources() {
        int sources = (prompt != null ? 1 : 0) + (promptFile != null ? 1 : 0) + (contextFile != null ? 1 : 0)
                + (requests != null ? 1 : 0);
        if (sources != 1) {
            throw new StarflinkCli.UsageException(
                    "give exactly one of --prompt, --prompt-file, --context-file or --requests");
        }
        if (contextFile != null && question == null) {
            throw new StarflinkCli.UsageException("--context-file needs --question or --question-file");
        }
        if (contextFile == null && question != null) {
            throw new StarflinkCli.UsageException("--question needs --context-file");
        }
        if (out != null && requests == null) {
            throw new StarflinkCli.UsageException("--out is for --requests");
        }
    }

    static String read(Path file) {
        try {
            return Files.readString(file, StandardCharsets.UTF_8);
        } catch (java.nio.charset.MalformedInputException e) {
            throw new EngineException("not UTF-8 text: " + file);
        } catch (java.nio.file.NoSuchFileException e) {
            throw new EngineException("no such file: " + file);
        } catch (IOException e) {
            throw new EngineException("cannot read " + file + ": " + e.getMessage());
        }
    }

    /** Each input line -> one output line, in order; a bad line becomes an error line and the batch goes on. */
    static final class BatchRunner {
        private final RequestExecutor executor;
        private final SamplingOptions defaults;

        BatchRunner(RequestExecutor executor, SamplingOptions defaults) {
            this.executor = executor;
            this.defaults = defaults;
        }

        void run(Path input, Path output, PrintWriter stdout) throws IOException {
            try (BufferedReader reader = Files.newBufferedReader(input, StandardCharsets.UTF_8);
                 PrintWriter writer = output == null ? stdout
                         : new PrintWriter(Files.newBufferedWriter(output, StandardCharsets.UTF_8))) {
                String line;
                int lineNumber = 0;
                while ((line = reader.readLine()) != null) {
                    lineNumber++;
                    if (!line.isBlank()) {
                        writer.println(answer(line, lineNumber));
                        writer.flush();
                    }
                }
            }
        }

        private ObjectNode answer(String line, int lineNumber) {
            String id = null;
            try {
                JsonNode request = JsonOutput.MAPPER.readTree(line);
                if (request == null || !request.isObject()) {
                    throw new EngineException("line " + lineNumber + " is not a JSON object");
                }
                id = request.hasNonNull("id") ? request.get("id").asText() : null;
                ObjectNode result = JsonOutput.result(executor.execute(parse(request), token -> { }));
                return withId(id, result);
            } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
                return error(id, "line " + lineNumber + " is not valid JSON: " + e.getOriginalMessage());
            } catch (EngineException e) {
                return error(id, e.getMessage());
            }
        }

        private GenerateRequest parse(JsonNode r) {
            SamplingParams params = new SamplingParams(
                    intField(r, "max_new_tokens", defaults.maxNewTokens),
                    r.has("temperature") ? number(r, "temperature") : defaults.temperature,
                    r.has("top_p") ? number(r, "top_p") : defaults.topP,
                    r.has("seed") ? (long) number(r, "seed") : defaults.seed,
                    r.has("stop") ? List.of(text(r, "stop")) : defaults.stop);
            return new GenerateRequest(
                    r.hasNonNull("id") ? r.get("id").asText() : null,
                    r.has("prompt") ? text(r, "prompt") : null,
                    r.has("context") ? text(r, "context") : null,
                    r.has("question") ? text(r, "question") : null,
                    AttentionMode.parse(r.has("mode") ? text(r, "mode") : "star"),
                    r.hasNonNull("block_size") ? intField(r, "block_size", 0) : null,
                    r.hasNonNull("anchor_size") ? intField(r, "anchor_size", 0) : null,
                    params);
        }

        private static String text(JsonNode r, String field) {
            if (!r.get(field).isTextual()) {
                throw new EngineException("\"" + field + "\" must be a string");
            }
            return r.get(field).asText();
        }

        private static double number(JsonNode r, String field) {
            if (!r.get(field).isNumber()) {
                throw new EngineException("\"" + field + "\" must be a number");
            }
            return r.get(field).asDouble();
        }

        private static int intField(JsonNode r, String field, int fallback) {
            if (!r.has(field)) {
                return fallback;
            }
            if (!r.get(field).canConvertToInt() || !r.get(field).isIntegralNumber()) {
                throw new EngineException("\"" + field + "\" must be an integer, got " + r.get(field));
            }
            return r.get(field).asInt();
        }

        private static ObjectNode withId(String id, ObjectNode result) {
            ObjectNode node = JsonOutput.MAPPER.createObjectNode();
            node.put("id", id);
            node.setAll(result);
            return node;
        }

        private static ObjectNode error(String id, String message) {
            ObjectNode node = JsonOutput.MAPPER.createObjectNode();
            node.put("id", id);
            node.put("error", message);
            return node;
        }
    }
}
