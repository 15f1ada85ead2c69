package org.starflink.engine.generate;

import java.util.List;
import org.starflink.engine.EngineException;

/**
 * How to pick tokens and when to stop.
 *
 * @param maxNewTokens upper bound on generated tokens (EOS included when produced)
 * @param temperature  0 = greedy; otherwise logits are divided by it before the softmax
 * @param topP         nucleus size in (0, 1]; 1 = the whole distribution
 * @param seed         seeds the sampler; the same seed gives the same tokens
 * @param stop         strings that end generation once the generated text contains one (the text is cut before it)
 */
public record SamplingParams(int maxNewTokens, double temperature, double topP, long seed, List<String> stop) {
    /** The hard ceiling on max_new_tokens, whatever the model's window: a guard against absurd requests. */
    public static final int MAX_NEW_TOKENS_LIMIT = 1 << 20;

    public SamplingParams {
        if (maxNewTokens <= 0 || maxNewTokens > MAX_NEW_TOKENS_LIMIT) {
            throw new EngineException("max new tokens must be in 1.." + MAX_NEW_TOKENS_LIMIT + ", got " + maxNewTokens);
        }
        if (!(temperature >= 0) || Double.isInfinite(temperature)) {
            throw new EngineException("temperature must be a finite number >= 0, got " + temperature);
        }
        if (!(topP > 0 && topP <= 1)) {
            throw new EngineException("top-p must be in (0, 1], got " + topP);
        }
        stop = stop == null ? List.of() : List.copyOf(stop);
        if (stop.stream().anyMatch(String::isEmpty)) {
            throw new EngineException("stop strings must not be empty");
        }
    }

    public static SamplingParams greedy(int maxNewTokens) {
        return new SamplingParams(maxNewTokens, 0, 1, 0, List.of());
    }
}
