package org.starflink.engine.wire;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.List;
import org.starflink.engine.EngineException;
import org.starflink.engine.forward.KvCache;
import org.starflink.engine.forward.KvSpan;
import org.starflink.engine.forward.Transformer;

/** Cuts a block's KV cache into pages and puts it back together. */
public final class KvPages {
    private KvPages() {
    }

    /** The pages holding tokens [fromToken, length) of every layer, page-aligned: a partly filled page is
     *  returned whole (it is the one an extension rewrites). */
    public static List<KvPage> pagesFrom(KvCache cache, int pageTokens, int fromToken) {
        List<KvPage> pages = new ArrayList<>();
        int width = cache.kvWidth();
        for (int layer = 0; layer < cache.layers(); layer++) {
            KvSpan span = cache.span(layer);
            for (int page = fromToken / pageTokens; page * pageTokens < span.length(); page++) {
                int start = page * pageTokens;
                int end = Math.min(span.length(), start + pageTokens);
                pages.add(new KvPage(layer, page, span.positions()[start], end - start,
                        Arrays.copyOfRange(span.keys(), start * width, end * width),
                        Arrays.copyOfRange(span.values(), start * width, end * width)));
            }
        }
        return pages;
    }

    /** Rebuilds a cache from all of its pages, in any order. */
    public static KvCache assemble(Collection<KvPage> pages, int layers, int kvWidth) {
        List<List<KvPage>> byLayer = new ArrayList<>();
        for (int l = 0; l < layers; l++) {
            byLayer.add(new ArrayList<>());
        }
        for (KvPage page : pages) {
            if (page.layer() < 0 || page.layer() >= layers || page.kvWidth() != kvWidth) {
                throw new EngineException("KV page does not fit the model: layer " + page.layer() + ", width "
                        + page.kvWidth());
            }
            byLayer.get(page.layer()).add(page);
        }
        int tokens = byLayer.get(0).stream().mapToInt(KvPage::count).sum();
        KvCache cache = new KvCache(layers, kvWidth, tokens);
        for (int layer = 0; layer < layers; layer++) {
            List<KvPage> layerPages = byLayer.get(layer);
            layerPages.sort((a, b) -> Integer.compare(a.page(), b.page()));
            for (int i = 0; i < layerPages.size(); i++) {
                KvPage page = layerPages.get(i);
                if (page.page() != i) {
                    throw new EngineException("KV pages of layer " + layer + " are incomplete: page " + i
                            + " missing");
                }
                cache.append(layer, Transformer.range(page.firstPosition(), page.count()), page.keys(),
                        page.values());
            }
        }
        return cache;
    }
}
