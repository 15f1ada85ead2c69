package org.starflink.engine.generate;

import java.util.Arrays;
import java.util.Set;
import java.util.function.IntConsumer;
import org.starflink.engine.tokenizer.IncrementalDecoder;
import org.starflink.engine.tokenizer.Tokenizer;

/** The sampling loop: feed the prompt, then sample, stream and feed back one token at a time until a stop. */
public final class Generator {
    private final Tokenizer tokenizer;
    private final Set<Integer> eosIds;

    public Generator(Tokenizer tokenizer, Set<Integer> eosIds) {
        this.tokenizer = tokenizer;
        this.eosIds = eosIds;
    }

    /**
     * @param prompt   tokens fed first (for a plain prompt: BOS + its tokens; for Star: the question)
     * @param onToken  called with each generated id as soon as it is sampled
     */
    public GenerationResult generate(Session session, int[] prompt, SamplingParams params, IntConsumer onToken) {
        Sampler sampler = new Sampler(params);
        IncrementalDecoder decoder = new IncrementalDecoder(tokenizer);
        StringBuilder text = new StringBuilder();
        int[] generated = new int[Math.min(params.maxNewTokens(), 1024)];
        int count = 0;
        FinishReason reason = FinishReason.LENGTH;

        long start = System.nanoTime();
        float[] logits = session.feed(prompt);
        long prefillNanos = System.nanoTime() - start;
        long decodeStart = System.nanoTime();
        int fedBack = 0;
        while (true) {
            int token = sampler.next(logits, count);
            if (count == generated.length) {
                generated = Arrays.copyOf(generated, count * 2);
            }
            generated[count++] = token;
            onToken.accept(token);
            if (eosIds.contains(token)) {
                reason = FinishReason.EOS;
                break;
            }
            text.append(decoder.add(token));
            int stopAt = firstStop(text, params);
            if (stopAt >= 0) {
                text.setLength(stopAt);
                reason = FinishReason.STOP;
                break;
            }
            if (count == params.maxNewTokens()) {
                break;
            }
            logits = session.feed(new int[] {token});
            fedBack++;
        }
        if (reason != FinishReason.STOP) {
            text.append(decoder.flush());
        }
        long decodeNanos = System.nanoTime() - decodeStart;
        Timings timings = new Timings(prompt.length, prefillNanos, fedBack, decodeNanos);
        return new GenerationResult(Arrays.copyOf(generated, count), text.toString(), reason, timings);
    }

    private static int firstStop(CharSequence text, SamplingParams params) {
        int first = -1;
        String s = text.toString();
        for (String stop : params.stop()) {
            int at = s.indexOf(stop);
            if (at >= 0 && (first < 0 || at < first)) {
                first = at;
            }
        }
        return first;
    }
}
