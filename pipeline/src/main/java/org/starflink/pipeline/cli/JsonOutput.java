package org.starflink.pipeline.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.starflink.engine.generate.GenerationResult;
import org.starflink.engine.generate.Timings;

/** The JSON shapes the command line prints. */
final class JsonOutput {
    static final ObjectMapper MAPPER = new ObjectMapper();

    private JsonOutput() {
    }

    /** {"tokens": [...], "text": "...", "finish_reason": "...", "timings": {...}} */
    static ObjectNode result(GenerationResult result) {
        ObjectNode node = MAPPER.createObjectNode();
        var tokens = node.putArray("tokens");
        for (int token : result.tokens()) {
            tokens.add(token);
        }
        node.put("text", result.text());
        node.put("finish_reason", result.finishReason().wireName());
        node.set("timings", timings(result.timings()));
        return node;
    }

    static ObjectNode timings(Timings t) {
        ObjectNode node = MAPPER.createObjectNode();
        node.put("prefill_tokens", t.prefillTokens());
        node.put("prefill_ms", t.prefillNanos() / 1e6);
        node.put("prefill_tokens_per_s", t.prefillTokensPerSecond());
        node.put("decode_tokens", t.decodeTokens());
        node.put("decode_ms", t.decodeNanos() / 1e6);
        node.put("decode_tokens_per_s", t.decodeTokensPerSecond());
        return node;
    }
}
