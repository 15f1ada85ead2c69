package org.starflink.engine.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.Set;

/**
 * Decides from a tokenizer.json whether {@link WordBoundaryCut} is exact for it, i.e. whether every piece the
 * tokenizer makes ends before a space that stands between two letters and the text after that space is
 * pre-tokenized as if it started there. Only configurations whose behaviour at such a space is known are accepted;
 * anything else (a normalizer, a prefix space, an unknown split pattern, added tokens that strip spaces) is
 * refused with the reason, and the tokenizer then has no exact cut (a streaming document is re-tokenized whole).
 *
 * <p>Accepted: no normalizer; a BPE model without dropout; pre-tokenizers that are ByteLevel without a prefix
 * space, or a Sequence of ByteLevel and Splits (isolated, not inverted) whose patterns are below; at least one of
 * them splits words (ByteLevel's GPT-2 regex, or the Llama 3 pattern); added tokens without spaces and without
 * lstrip/rstrip. Each of the patterns starts a new piece at " letter" and never runs a letter piece past a space.
 */
final class HfCutRule {
    /** Llama 3's (and tiktoken cl100k's) split pattern: a letter run takes at most one non-letter in front. */
    static final String LLAMA3_PATTERN = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}"
            + "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    /** Patterns that only group digits: they neither see letters nor spaces. */
    private static final Set<String> DIGIT_PATTERNS = Set.of("\\d{1,3}", "\\p{N}{1,3}", "\\p{N}");

    private HfCutRule() {
    }

    /** Null when cuts at a space between two letters are exact for this tokenizer.json, else why not. */
    static String whyNot(JsonNode root) {
        if (!root.path("normalizer").isNull() && !root.path("normalizer").isMissingNode()) {
            return "it has a normalizer (" + root.path("normalizer").path("type").asText() + ")";
        }
        JsonNode model = root.path("model");
        if (!"BPE".equals(model.path("type").asText())) {
            return "its model is " + model.path("type").asText() + ", not BPE";
        }
        if (!model.path("dropout").isNull() && !model.path("dropout").isMissingNode()) {
            return "its BPE model has dropout";
        }
        for (JsonNode added : root.path("added_tokens")) {
            if (added.path("content").asText().contains(" ") || added.path("lstrip").asBoolean()
                    || added.path("rstrip").asBoolean()) {
                return "added token " + added.path("content") + " holds or strips spaces";
            }
        }
        JsonNode pre = root.path("pre_tokenizer");
        Iterable<JsonNode> steps = "Sequence".equals(pre.path("type").asText()) ? pre.path("pretokenizers")
                : java.util.List.of(pre);
        boolean splitsWords = false;
        for (JsonNode step : steps) {
            String type = step.path("type").asText();
            if ("ByteLevel".equals(type)) {
                if (step.path("add_prefix_space").asBoolean()) {
                    return "its ByteLevel pre-tokenizer adds a prefix space";
                }
                splitsWords |= step.path("use_regex").asBoolean(true);
            } else if ("Split".equals(type)) {
                String pattern = step.path("pattern").path("Regex").asText(null);
                if (!"Isolated".equals(step.path("behavior").asText()) || step.path("invert").asBoolean()) {
                    return "a Split pre-tokenizer is not isolated";
                }
                if (LLAMA3_PATTERN.equals(pattern)) {
                    splitsWords = true;
                } else if (!DIGIT_PATTERNS.contains(pattern)) {
                    return "a Split pre-tokenizer's pattern is not one whose cuts are known (" + step.path("pattern")
                            + ")";
                }
            } else {
                return "its pre-tokenizer " + (type.isEmpty() ? "is missing" : type + " is not one whose cuts are known");
            }
        }
        return splitsWords ? null : "no pre-tokenizer splits words";
    }
}
