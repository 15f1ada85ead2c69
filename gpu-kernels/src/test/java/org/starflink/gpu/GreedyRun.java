package org.starflink.gpu;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import org.starflink.engine.generate.Sampler;
import org.starflink.engine.generate.Session;
import org.starflink.engine.star.BlockLayout;
import org.starflink.engine.star.EncodedContext;
import org.starflink.engine.star.LongContextGenerator;
import org.starflink.engine.testing.Passes;

/**
 * Greedy question answering over token ids (no tokenizer: the GPU machine compares ids): phase 1 with a layout,
 * then the question, then argmax tokens until EOS or the limit. Also records each step's top-2 logit gap, so that
 * a disagreement between backends can be told apart from a near-tie.
 */
record GreedyRun(int[] tokens, double[] topTwoGaps) {

    static GreedyRun of(LongContextGenerator generator, Set<Integer> eos, int[] context, int[] question,
                        BlockLayout layout, int maxNewTokens) {
        List<Integer> tokens = new ArrayList<>();
        List<Double> gaps = new ArrayList<>();
        try (EncodedContext encoded = generator.encode(context, layout);
             Session session = generator.session(encoded, question.length + maxNewTokens)) {
            float[] logits = session.feed(question);
            while (true) {
                int token = Sampler.argmax(logits);
                tokens.add(token);
                gaps.add(Passes.topTwoGap(logits));
                if (eos.contains(token) || tokens.size() == maxNewTokens) {
                    break;
                }
                logits = session.feed(new int[] {token});
            }
        }
        return new GreedyRun(tokens.stream().mapToInt(Integer::intValue).toArray(),
                gaps.stream().mapToDouble(Double::doubleValue).toArray());
    }
}
