package org.starflink.engine.tokenizer;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import org.starflink.engine.DjlOffline;
import org.starflink.engine.EngineException;

/**
 * A Hugging Face tokenizer.json, run by DJL's binding of the Rust tokenizers library. Loaded from a local file
 * only; never truncates or pads, never adds special tokens (the engine adds BOS itself), and decodes with
 * special tokens skipped.
 */
public final class HfTokenizer implements Tokenizer, AutoCloseable {
    public static final String FILE_NAME = "tokenizer.json";

    private final HuggingFaceTokenizer tokenizer;
    private final int vocabSize;
    /** Why cuts between words are not exact for this file ({@link HfCutRule}); null when they are. */
    private final String noExactCuts;

    private HfTokenizer(HuggingFaceTokenizer tokenizer, int vocabSize, String noExactCuts) {
        this.tokenizer = tokenizer;
        this.vocabSize = vocabSize;
        this.noExactCuts = noExactCuts;
    }

    /** Loads {@code path}: a tokenizer.json file or a directory that holds one. */
    public static HfTokenizer load(Path path) {
        Path file = Files.isDirectory(path) ? path.resolve(FILE_NAME) : path;
        if (!Files.isRegularFile(file)) {
            throw new EngineException(file + " is missing (a Hugging Face tokenizer.json is needed)");
        }
        JsonNode root = readJson(file);
        int vocabSize = countTokens(file, root);
        String noExactCuts = HfCutRule.whyNot(root);
        DjlOffline.ensure();
        try {
            // Builder options, not a name: a tokenizer name would make DJL look it up on the Hugging Face hub.
            HuggingFaceTokenizer tokenizer = HuggingFaceTokenizer.builder()
                    .optTokenizerPath(file)
                    .optAddSpecialTokens(false)
                    .optTruncation(false)
                    .optPadding(false)
                    .build();
            return new HfTokenizer(tokenizer, vocabSize, noExactCuts);
        } catch (IOException | RuntimeException e) {
            throw new EngineException(file + ": cannot load tokenizer (" + e.getMessage() + ")", e);
        }
    }

    @Override
    public int[] encode(String text) {
        long[] ids = tokenizer.encode(text, false, false).getIds();
        return Arrays.stream(ids).mapToInt(Math::toIntExact).toArray();
    }

    /** True when {@link HfCutRule} accepts the file (see {@link #whyNoExactCuts} otherwise). */
    @Override
    public boolean hasExactCuts() {
        return noExactCuts == null;
    }

    @Override
    public int lastExactCut(String text, int from) {
        return noExactCuts == null ? WordBoundaryCut.last(text, from) : -1;
    }

    /** Nothing is prepended to a text (no prefix space), so the text after an exact cut encodes as it is. */
    @Override
    public int[] encodeAfterCut(String rest) {
        if (noExactCuts != null) {
            throw new UnsupportedOperationException("no exact cut for this tokenizer: " + noExactCuts);
        }
        return encode(rest);
    }

    /** Null when a streaming text can be cut exactly between words; else the reason it cannot. */
    public String whyNoExactCuts() {
        return noExactCuts;
    }

    @Override
    public String decode(int[] tokens) {
        return tokenizer.decode(Arrays.stream(tokens).asLongStream().toArray(), true);
    }

    /** One more than the largest id in the model's vocabulary or the added tokens. */
    @Override
    public int vocabSize() {
        return vocabSize;
    }

    @Override
    public void close() {
        tokenizer.close();
    }

    private static JsonNode readJson(Path file) {
        try {
            return new ObjectMapper().readTree(file.toFile());
        } catch (IOException e) {
            throw new EngineException(file + " is not valid JSON (" + e.getMessage().lines().findFirst().orElse("")
                    + ")", e);
        }
    }

    /**
     * DJL does not expose the vocabulary size, so read it from the file: BPE and WordPiece vocabularies map
     * token to id, Unigram vocabularies list [piece, score] pairs in id order.
     */
    private static int countTokens(Path file, JsonNode root) {
        JsonNode vocab = root.path("model").path("vocab");
        int size = vocab.isArray() ? vocab.size() : 0;
        for (Map.Entry<String, JsonNode> token : vocab.properties()) {
            size = Math.max(size, token.getValue().asInt() + 1);
        }
        for (JsonNode added : root.path("added_tokens")) {
            size = Math.max(size, added.path("id").asInt() + 1);
        }
        if (size == 0) {
            throw new EngineException(file + ": no model.vocab or added_tokens");
        }
        return size;
    }
}
