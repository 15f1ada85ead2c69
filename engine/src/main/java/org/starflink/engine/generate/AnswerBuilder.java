package org.starflink.engine.generate;

import java.util.Arrays;
import java.util.Set;
import org.starflink.engine.tokenizer.IncrementalDecoder;
import org.starflink.engine.tokenizer.Tokenizer;

/**
 * Accumulates an answer one sampled token at a time and decides when it ends (EOS, max tokens, a stop string).
 * The single-process {@link Generator} and the streaming query host both use it, so both stop at the same token
 * with the same text. Its whole state is the list of tokens: {@link #resume} rebuilds it after a restore.
 */
public final class AnswerBuilder {
    /** What one token adds: its text delta, and why the answer ends here (null: it goes on). */
    public record Step(String delta, FinishReason finish) {
    }

    private final Set<Integer> eosIds;
    private final SamplingParams params;
    private final IncrementalDecoder decoder;
    private final StringBuilder text = new StringBuilder();
    private int[] tokens = new int[16];
    private int count;
    private FinishReason finish;

    public AnswerBuilder(Tokenizer tokenizer, Set<Integer> eosIds, SamplingParams params) {
        this.eosIds = eosIds;
        this.params = params;
        this.decoder = new IncrementalDecoder(tokenizer);
    }

    /** The builder after {@code tokens} were added (they must not have ended the answer). */
    public static AnswerBuilder resume(Tokenizer tokenizer, Set<Integer> eosIds, SamplingParams params, int[] tokens) {
        AnswerBuilder builder = new AnswerBuilder(tokenizer, eosIds, params);
        for (int token : tokens) {
            if (builder.add(token).finish() != null) {
                throw new IllegalStateException("resumed answer had already finished");
            }
        }
        return builder;
    }

    public Step add(int token) {
        if (finish != null) {
            throw new IllegalStateException("the answer has finished (" + finish + ")");
        }
        if (count == tokens.length) {
            tokens = Arrays.copyOf(tokens, count * 2);
        }
        tokens[count++] = token;
        if (eosIds.contains(token)) {
            finish = FinishReason.EOS;
            return new Step(decoder.flush(), finish);
        }
        int before = text.length();
        text.append(decoder.add(token));
        int stopAt = firstStop();
        if (stopAt >= 0) {
            finish = FinishReason.STOP;
            String delta = stopAt > before ? text.substring(before, stopAt) : "";
            text.setLength(Math.max(stopAt, 0));
            return new Step(delta, finish);
        }
        if (count == params.maxNewTokens()) {
            finish = FinishReason.LENGTH;
            String held = decoder.flush();
            text.append(held);
            return new Step(text.substring(before), finish);
        }
        return new Step(text.substring(before), null);
    }

    /** The stop string that occurs first in the text, or -1. */
    private int firstStop() {
        int first = -1;
        for (String stop : params.stop()) {
            int at = text.indexOf(stop);
            if (at >= 0 && (first < 0 || at < first)) {
                first = at;
            }
        }
        return first;
    }

    public int[] tokens() {
        return Arrays.copyOf(tokens, count);
    }

    public int count() {
        return count;
    }

    public String text() {
        return text.toString();
    }

    public FinishReason finish() {
        return finish;
    }
}
