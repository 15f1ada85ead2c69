package org.starflink.engine.generate;

import java.util.Set;
import java.util.function.IntConsumer;
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
        AnswerBuilder answer = new AnswerBuilder(tokenizer, eosIds, params);
        long start = System.nanoTime();
        float[] logits = session.feed(prompt);
        long prefillNanos = System.nanoTime() - start;
        long decodeStart = System.nanoTime();
        int fedBack = 0;
        while (true) {
            int token = sampler.next(logits, answer.count());
            onToken.accept(token);
            if (answer.add(token).finish() != null) {
                break;
            }
            logits = session.feed(new int[] {token});
            fedBack++;
        }
        Timings timings = new Timings(prompt.length, prefillNanos, fedBack, System.nanoTime() - decodeStart);
        return new GenerationResult(answer.tokens(), answer.text(), answer.finish(), timings);
    }
}
