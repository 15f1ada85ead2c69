package org.starflink.engine.star;

import java.util.ArrayList;
import java.util.List;
import java.util.function.IntConsumer;
import org.starflink.engine.EngineException;
import org.starflink.engine.backend.KvCache;
import org.starflink.engine.forward.Transformer;
import org.starflink.engine.generate.GenerationResult;
import org.starflink.engine.generate.Generator;
import org.starflink.engine.generate.SamplingParams;
import org.starflink.engine.generate.Timings;
import org.starflink.engine.model.Model;

/**
 * Question answering over a long context, in one process, in Star or global mode, under the {@link TokenContract}.
 */
public final class LongContextGenerator {
    private final Model model;
    private final Transformer transformer;
    private final BlockEncoder encoder;

    public LongContextGenerator(Model model, Transformer transformer) {
        this.model = model;
        this.transformer = transformer;
        this.encoder = new BlockEncoder(transformer);
    }

    public int[] contextTokens(String context) {
        return TokenContract.contextTokens(model.tokenizer(), model.config().bosId(), context);
    }

    public int[] questionTokens(String question) {
        int[] tokens = model.tokenizer().encode(question);
        if (tokens.length == 0) {
            throw new EngineException("the question is empty");
        }
        return tokens;
    }

    /**
     * The layout a mode uses: one block of the whole context for global; for Star the given block and anchor
     * sizes, each defaulting as in the paper (block = ceil(N / 4), anchor = block).
     */
    public static BlockLayout layoutFor(AttentionMode mode, Integer blockSize, Integer anchorSize, int contextLength) {
        if (mode == AttentionMode.GLOBAL) {
            return BlockLayout.global(contextLength);
        }
        int block = blockSize != null ? blockSize : Math.max(1, (contextLength + 3) / 4);
        return new BlockLayout(block, anchorSize != null ? anchorSize : block);
    }

    /**
     * Phase 1: block 0 alone, the anchor once, then every other block against it. The anchor is encoded by
     * itself, exactly as a streaming block worker that does not hold block 0 does, so that this single-process path
     * and the Flink job compute bit-identical KV.
     */
    public EncodedContext encode(int[] contextTokens, BlockLayout layout) {
        long start = System.nanoTime();
        List<ContextBlock> blocks = layout.split(contextTokens);
        List<KvCache> caches = new ArrayList<>(blocks.size());
        if (blocks.isEmpty()) {
            return new EncodedContext(0, caches, System.nanoTime() - start);
        }
        // With a = b (the paper's default) the anchor IS block 0, encoded the same way (alone, at 0..b-1): its KV
        // serves as the anchor, bit-identical to a separate encode, at one block's less work.
        boolean anchorIsBlockZero = layout.anchorSize() >= blocks.get(0).tokens().length;
        KvCache separateAnchor = null;
        try {
            caches.add(encoder.encode(blocks.get(0), null));
            if (blocks.size() > 1 && !anchorIsBlockZero) {
                separateAnchor = encoder.encodeAnchor(layout.anchor(contextTokens));
            }
            KvCache anchor = separateAnchor != null ? separateAnchor : caches.get(0);
            for (ContextBlock block : blocks.subList(1, blocks.size())) {
                caches.add(encoder.encode(block, anchor));
            }
        } catch (RuntimeException e) {
            caches.forEach(KvCache::close);
            throw e;
        } finally {
            if (separateAnchor != null) {
                separateAnchor.close();
            }
        }
        return new EncodedContext(contextTokens.length, caches, System.nanoTime() - start);
    }

    /** Phase 2 over an encoded context; the session (which the caller closes) does not close the context. */
    public StarSession session(EncodedContext context, int expectedTokens) {
        return new StarSession(new QueryHost(transformer, context.length(), expectedTokens), transformer.backend(),
                context.blocks());
    }

    /**
     * Encodes the context, then answers the question. Timings count phase 1 and the question's pass as prefill.
     *
     * @param layout            the blocks to cut the context into ({@link #layoutFor} for a mode)
     * @param allowBeyondWindow run even when context + question + answer exceed the model's trained window
     */
    public GenerationResult generate(int[] contextTokens, int[] questionTokens, BlockLayout layout,
                                     SamplingParams params, boolean allowBeyondWindow, IntConsumer onToken) {
        checkWindow(contextTokens.length + questionTokens.length, params.maxNewTokens(), allowBeyondWindow);
        EncodedContext encoded = encode(contextTokens, layout);
        GenerationResult result;
        try (encoded; StarSession session = session(encoded, questionTokens.length + params.maxNewTokens())) {
            result = new Generator(model.tokenizer(), model.config().eosIds())
                    .generate(session, questionTokens, params, onToken);
        }
        Timings t = result.timings();
        Timings withPhase1 = new Timings(contextTokens.length + t.prefillTokens(),
                encoded.encodeNanos() + t.prefillNanos(), t.decodeTokens(), t.decodeNanos());
        return new GenerationResult(result.tokens(), result.text(), result.finishReason(), withPhase1);
    }

    /** Rejects a request that would run past the model's context window unless explicitly allowed. */
    public void checkWindow(int promptTokens, int maxNewTokens, boolean allowBeyondWindow) {
        int window = model.config().maxPositions();
        if (!allowBeyondWindow && promptTokens + maxNewTokens > window) {
            throw new EngineException("prompt of " + promptTokens + " tokens + " + maxNewTokens
                    + " new tokens exceeds the model's context window of " + window
                    + " (allow it explicitly to run past the window)");
        }
    }
}
