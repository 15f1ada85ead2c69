package org.starflink.engine.generate;

import java.util.List;
import org.starflink.engine.backend.KvCache;
import org.starflink.engine.forward.Transformer;

/** Ordinary causal decoding over one KV cache: the baseline every Star result is compared with. */
public final class GlobalSession implements Session {
    private final Transformer transformer;
    private final KvCache cache;

    public GlobalSession(Transformer transformer, int expectedLength) {
        this.transformer = transformer;
        this.cache = transformer.backend().newKvCache(expectedLength);
    }

    @Override
    public float[] feed(int[] tokens) {
        return transformer.forward(tokens, Transformer.range(cache.length(), tokens.length), List.of(), cache, true);
    }

    @Override
    public int length() {
        return cache.length();
    }

    @Override
    public void close() {
        cache.close();
    }
}
