package org.starflink.engine.wire;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import org.starflink.engine.EngineException;
import org.starflink.engine.backend.Backend;
import org.starflink.engine.backend.KvCache;
import org.starflink.engine.forward.Transformer;

/** Cuts a KV cache into pages (in the cache's precision) and puts it back together in a backend. */
public final class KvPages {
    private KvPages() {
    }

    /** Pages per layer in a state key ({@link #stateKey}): far more than any block or question has. */
    private static final int PAGES_PER_LAYER = 1 << 20;

    /** The pages holding tokens [fromToken, length) of every layer, page-aligned: a partly filled page is
     *  returned whole (it is the one an extension rewrites). */
    public static List<KvPage> pagesFrom(KvCache cache, int pageTokens, int fromToken) {
        List<KvPage> pages = new ArrayList<>();
        for (int layer = 0; layer < cache.layers(); layer++) {
            pages.addAll(pagesFrom(cache, pageTokens, fromToken, layer));
        }
        return pages;
    }

    /** The same for one layer. */
    public static List<KvPage> pagesFrom(KvCache cache, int pageTokens, int fromToken, int layer) {
        List<KvPage> pages = new ArrayList<>();
        int rowBytes = cache.kvWidth() * cache.precision().bytes;
        int length = cache.length(layer);
        for (int page = fromToken / pageTokens; (long) page * pageTokens < length; page++) {
            int start = page * pageTokens;
            int end = (int) Math.min(length, (long) start + pageTokens);
            byte[] keys = new byte[(end - start) * rowBytes];
            byte[] values = new byte[keys.length];
            cache.read(layer, start, end, ByteBuffer.wrap(keys), ByteBuffer.wrap(values));
            pages.add(new KvPage(layer, page, cache.positions(layer, start, start + 1)[0], end - start,
                    cache.precision(), keys, values));
        }
        return pages;
    }

    /** The key of a page in a keyed MapState of pages: one per (layer, page), in page order within a layer. */
    public static int stateKey(KvPage page) {
        if (page.page() >= PAGES_PER_LAYER) {
            throw new EngineException("KV page " + page.page() + " is beyond " + PAGES_PER_LAYER + " per layer");
        }
        return page.layer() * PAGES_PER_LAYER + page.page();
    }

    /**
     * Rebuilds a cache in {@code backend} from all of its pages, in any order. Layers may hold different numbers
     * of tokens (a query host's state saved in the middle of a pass), but each layer's pages must be complete.
     */
    public static KvCache assemble(Backend backend, Collection<KvPage> pages) {
        int layers = backend.config().layers();
        int kvWidth = backend.config().kvWidth();
        List<List<KvPage>> byLayer = new ArrayList<>();
        for (int l = 0; l < layers; l++) {
            byLayer.add(new ArrayList<>());
        }
        for (KvPage page : pages) {
            if (page.layer() < 0 || page.layer() >= layers || page.kvWidth() != kvWidth) {
                throw new EngineException("KV page does not fit the model: layer " + page.layer() + ", width "
                        + page.kvWidth() + " (the model has " + layers + " layers of width " + kvWidth + ")");
            }
            byLayer.get(page.layer()).add(page);
        }
        int tokens = byLayer.get(0).stream().mapToInt(KvPage::count).sum();
        KvCache cache = backend.newKvCache(tokens);
        try {
            for (int layer = 0; layer < layers; layer++) {
                List<KvPage> layerPages = byLayer.get(layer);
                layerPages.sort((a, b) -> Integer.compare(a.page(), b.page()));
                for (int i = 0; i < layerPages.size(); i++) {
                    KvPage page = layerPages.get(i);
                    if (page.page() != i) {
                        throw new EngineException("KV pages of layer " + layer + " are incomplete: page " + i
                                + " missing");
                    }
                    cache.write(layer, Transformer.range(page.firstPosition(), page.count()), page.precision(),
                            ByteBuffer.wrap(page.keys()), ByteBuffer.wrap(page.values()));
                }
            }
        } catch (RuntimeException e) {
            cache.close();
            throw e;
        }
        return cache;
    }
}
