package org.starflink.pipeline.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.starflink.engine.backend.BackendKind;
import org.starflink.engine.checkpoint.ModelRegistry;
import org.starflink.engine.checkpoint.Safetensors;
import org.starflink.engine.forward.Transformer;
import org.starflink.engine.generate.GlobalSession;
import org.starflink.engine.generate.Generator;
import org.starflink.engine.generate.SamplingParams;
import org.starflink.engine.model.Model;
import org.starflink.engine.star.BlockLayout;
import org.starflink.engine.star.LongContextGenerator;
import org.starflink.engine.testing.FloatFormat;
import org.starflink.engine.testing.RandomHfCheckpoint;
import org.starflink.engine.testing.SafetensorsWriter;
import org.starflink.engine.testing.SharedModels;

/** {@code starflink generate}: real outputs on stories260K, and one test per user error. */
class GenerateCommandTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path tmp;

    private static String stories() {
        return SharedModels.stories260KDir().resolve("stories260K.bin").toString();
    }

    @Test
    void jsonOutputCarriesTheReferenceGreedyTokens() throws IOException {
        JsonNode reference = JSON.readTree(SharedModels.stories260KDir()
                .resolve("reference/once_upon_a_time.json").toFile());
        CliRunner result = CliRunner.run("generate", "--model", stories(), "--prompt", "Once upon a time",
                "--max-new-tokens", "64", "--json");
        assertEquals(0, result.exitCode(), result.err());
        JsonNode json = JSON.readTree(result.out());
        assertEquals(reference.get("greedy_64_tokens"), json.get("tokens"));
        assertEquals(reference.get("greedy_text").asText(), "Once upon a time" + json.get("text").asText());
        assertEquals("length", json.get("finish_reason").asText());
        assertEquals(5, json.get("timings").get("prefill_tokens").asInt());
        assertTrue(json.get("timings").get("decode_tokens_per_s").asDouble() > 0);
    }

    @Test
    void plainOutputStreamsTheText() {
        CliRunner result = CliRunner.run("generate", "--model", stories(), "--prompt", "Once upon a time",
                "--max-new-tokens", "8");
        assertEquals(0, result.exitCode(), result.err());
        assertEquals(", there was a little girl", result.out().strip()); // the first 8 greedy tokens
        assertTrue(result.err().contains("decode"), result.err());
    }

    /**
     * Star mode gives the engine's Star generation with the given block and anchor sizes; global mode gives plain
     * causal decoding of context + question (another code path: one session over all tokens).
     */
    @Test
    void answersAQuestionOverAContextInStarAndGlobalMode() throws IOException {
        String text = "Tom had a red ball. ".repeat(40);
        Path context = Files.writeString(tmp.resolve("context.txt"), text);
        Model model = SharedModels.stories260K();
        Transformer transformer = new Transformer(ModelRegistry.backend(model, BackendKind.DJL));
        LongContextGenerator engine = new LongContextGenerator(model, transformer);
        int[] contextTokens = engine.contextTokens(text);
        int[] questionTokens = engine.questionTokens("Tom said");
        SamplingParams greedy = SamplingParams.greedy(6);
        int[] star = engine.generate(contextTokens, questionTokens, new BlockLayout(64, 16), greedy, false,
                t -> { }).tokens();
        int[] prompt = IntStream.concat(IntStream.of(contextTokens), IntStream.of(questionTokens)).toArray();
        int[] global;
        try (GlobalSession session = new GlobalSession(transformer, prompt.length + 6)) {
            global = new Generator(model.tokenizer(), model.config().eosIds()).generate(session, prompt, greedy,
                    t -> { }).tokens();
        }
        for (String mode : List.of("star", "global")) {
            CliRunner result = CliRunner.run("generate", "--model", stories(), "--context-file", context.toString(),
                    "--question", "Tom said", "--mode", mode, "--block-size", "64", "--anchor-size", "16",
                    "--max-new-tokens", "6", "--json");
            assertEquals(0, result.exitCode(), result.err());
            JsonNode json = JSON.readTree(result.out());
            int[] tokens = new int[json.get("tokens").size()];
            for (int i = 0; i < tokens.length; i++) {
                tokens[i] = json.get("tokens").get(i).asInt();
            }
            assertArrayEquals(mode.equals("star") ? star : global, tokens, mode + " mode");
            assertEquals(prompt.length, json.get("timings").get("prefill_tokens").asInt(), mode);
        }
    }

    @Test
    void batchAnswersEveryGoodLineAndReportsBadOnesByIdInOrder() throws IOException {
        Path requests = tmp.resolve("in.jsonl");
        Files.write(requests, List.of(
                "{\"id\": \"a\", \"context\": \"Lily saw a cat.\", \"question\": \"Lily\", \"mode\": \"global\","
                        + " \"max_new_tokens\": 5}",
                "{\"id\": \"b\", \"context\": \"Lily saw a cat.\", \"question\": \"\", \"max_new_tokens\": 5}",
                "this is not json",
                "{\"id\": \"c\", \"context\": \"Lily saw a cat.\", \"question\": \"Lily\", \"mode\": \"sideways\"}",
                "{\"id\": \"d\", \"context\": \"Lily saw a cat.\", \"question\": \"Lily\", \"mode\": \"star\","
                        + " \"block_size\": 4, \"anchor_size\": 2, \"max_new_tokens\": 5, \"temperature\": 0.8,"
                        + " \"seed\": 3}"));
        Path out = tmp.resolve("out.jsonl");
        CliRunner result = CliRunner.run("generate", "--model", stories(), "--requests", requests.toString(),
                "--out", out.toString());
        assertEquals(0, result.exitCode(), result.err());
        List<String> lines = Files.readAllLines(out);
        assertEquals(5, lines.size());
        assertEquals(5, JSON.readTree(lines.get(0)).get("tokens").size());
        assertEquals("b", JSON.readTree(lines.get(1)).get("id").asText());
        assertEquals("the question is empty", JSON.readTree(lines.get(1)).get("error").asText());
        assertTrue(JSON.readTree(lines.get(2)).get("error").asText().startsWith("line 3 is not valid JSON"));
        assertTrue(JSON.readTree(lines.get(3)).get("error").asText().contains("unknown mode 'sideways'"));
        assertEquals(5, JSON.readTree(lines.get(4)).get("tokens").size());
    }

    @Test
    void samplingIsReproducibleForASeed() throws IOException {
        String[] args = {"generate", "--model", stories(), "--prompt", "Once upon a time", "--max-new-tokens", "20",
                "--temperature", "0.9", "--top-p", "0.9", "--seed", "42", "--json"};
        JsonNode first = JSON.readTree(CliRunner.run(args).out());
        JsonNode second = JSON.readTree(CliRunner.run(args).out());
        assertEquals(first.get("tokens"), second.get("tokens"));
        args[args.length - 2] = "43";
        assertFalse(first.get("tokens").equals(JSON.readTree(CliRunner.run(args).out()).get("tokens")));
    }

    @Test
    void stopStringEndsGenerationAndCutsTheText() throws IOException {
        CliRunner result = CliRunner.run("generate", "--model", stories(), "--prompt", "Once upon a time",
                "--max-new-tokens", "64", "--stop", "Lily", "--json");
        JsonNode json = JSON.readTree(result.out());
        assertEquals("stop", json.get("finish_reason").asText());
        assertEquals(", there was a little girl named ", json.get("text").asText());
    }

    // ---- errors: one line naming the problem, a non-zero exit ----

    @Test
    void missingCheckpoint() {
        CliRunner.run("generate", "--model", tmp.resolve("nope.bin").toString(), "--prompt", "hi")
                .assertOneLineError(1, "model not found", "nope.bin");
    }

    @Test
    void truncatedLlama2cCheckpoint() throws IOException {
        Path truncated = tmp.resolve("stories260K.bin");
        byte[] bytes = Files.readAllBytes(Path.of(stories()));
        Files.write(truncated, java.util.Arrays.copyOf(bytes, bytes.length / 2));
        Files.copy(SharedModels.stories260KDir().resolve("tok512.bin"), tmp.resolve("tokenizer.bin"));
        CliRunner.run("generate", "--model", truncated.toString(), "--prompt", "hi")
                .assertOneLineError(1, "truncated llama2.c checkpoint");
    }

    @Test
    void truncatedSafetensors() throws IOException {
        Path dir = RandomHfCheckpoint.builder().writeTo(tmp.resolve("hf")).dir();
        try (RandomAccessFile shard = new RandomAccessFile(
                dir.resolve(RandomHfCheckpoint.SECOND_SHARD).toFile(), "rw")) {
            shard.setLength(shard.length() - 64);
        }
        CliRunner.run("generate", "--model", dir.toString(), "--prompt", "hi")
                .assertOneLineError(1, RandomHfCheckpoint.SECOND_SHARD, "truncated");
    }

    @Test
    void badSafetensorsHeader() throws IOException {
        Path dir = RandomHfCheckpoint.builder().writeTo(tmp.resolve("hf")).dir();
        Path shard = dir.resolve(RandomHfCheckpoint.FIRST_SHARD);
        byte[] bytes = Files.readAllBytes(shard);
        bytes[8] = '#'; // the JSON header starts at byte 8
        Files.write(shard, bytes);
        CliRunner.run("generate", "--model", dir.toString(), "--prompt", "hi")
                .assertOneLineError(1, RandomHfCheckpoint.FIRST_SHARD, "header");
    }

    @Test
    void shapeMismatch() throws IOException {
        Path dir = RandomHfCheckpoint.builder().writeTo(tmp.resolve("hf")).dir();
        editConfig(dir, config -> config.put("intermediate_size", config.get("intermediate_size").asInt() + 8));
        CliRunner.run("generate", "--model", dir.toString(), "--prompt", "hi")
                .assertOneLineError(1, "shape mismatch");
    }

    @Test
    void unknownDtype() throws IOException {
        Path dir = RandomHfCheckpoint.builder().sharded(false).writeTo(tmp.resolve("hf")).dir();
        Path file = dir.resolve("model.safetensors");
        SafetensorsWriter rewritten = new SafetensorsWriter();
        try (Safetensors original = Safetensors.open(file)) {
            for (String name : original.names()) {
                long[] shape = original.header(name).shape();
                if (name.equals("model.norm.weight")) {
                    rewritten.addRaw(name, "F64", shape, new byte[Math.toIntExact(shape[0] * 8)]);
                } else {
                    rewritten.add(name, FloatFormat.F32, shape, original.read(name));
                }
            }
        }
        rewritten.write(file);
        CliRunner.run("generate", "--model", dir.toString(), "--prompt", "hi")
                .assertOneLineError(1, "F64", "model.norm.weight");
    }

    @Test
    void unsupportedArchitecture() throws IOException {
        Path dir = RandomHfCheckpoint.builder().writeTo(tmp.resolve("hf")).dir();
        editConfig(dir, config -> config.putArray("architectures").add("GPT2LMHeadModel"));
        CliRunner.run("generate", "--model", dir.toString(), "--prompt", "hi")
                .assertOneLineError(1, "unsupported architecture", "GPT2LMHeadModel");
    }

    @Test
    void emptyPrompt() {
        CliRunner.run("generate", "--model", stories(), "--prompt", "").assertOneLineError(1, "the prompt is empty");
    }

    @Test
    void promptBeyondTheContextWindowUnlessAllowed() {
        String longPrompt = "Lily and Tom played in the park all day. ".repeat(60); // > 512 tokens
        CliRunner.run("generate", "--model", stories(), "--prompt", longPrompt, "--max-new-tokens", "4")
                .assertOneLineError(1, "exceeds the model's context window of 512");
        CliRunner allowed = CliRunner.run("generate", "--model", stories(), "--prompt", longPrompt,
                "--max-new-tokens", "4", "--allow-beyond-window", "--json");
        assertEquals(0, allowed.exitCode(), allowed.err());
    }

    @Test
    void badNumbers() throws IOException {
        Path context = Files.writeString(tmp.resolve("context.txt"), "Tom had a ball.");
        CliRunner.run("generate", "--model", stories(), "--prompt", "hi", "--max-new-tokens", "many")
                .assertOneLineError(2, "--max-new-tokens", "many");
        CliRunner.run("generate", "--model", stories(), "--prompt", "hi", "--max-new-tokens", "0")
                .assertOneLineError(1, "max new tokens");
        CliRunner.run("generate", "--model", stories(), "--prompt", "hi", "--max-new-tokens", "99999999")
                .assertOneLineError(1, "max new tokens");
        CliRunner.run("generate", "--model", stories(), "--prompt", "hi", "--temperature", "-1")
                .assertOneLineError(1, "temperature");
        CliRunner.run("generate", "--model", stories(), "--prompt", "hi", "--top-p", "1.5")
                .assertOneLineError(1, "top-p");
        CliRunner.run("generate", "--model", stories(), "--context-file", context.toString(), "--question", "q",
                "--block-size", "0").assertOneLineError(1, "block size");
    }

    @Test
    void contradictoryOptions() {
        CliRunner.run("generate", "--model", stories(), "--prompt", "a", "--prompt-file", "b")
                .assertOneLineError(2, "exactly one of");
        CliRunner.run("generate", "--model", stories(), "--prompt", "a", "--question", "b")
                .assertOneLineError(2, "--question needs --context-file");
    }

    private static void editConfig(Path dir, java.util.function.Consumer<ObjectNode> edit) throws IOException {
        Path config = dir.resolve("config.json");
        ObjectNode json = (ObjectNode) JSON.readTree(config.toFile());
        edit.accept(json);
        JSON.writeValue(config.toFile(), json);
    }
}
