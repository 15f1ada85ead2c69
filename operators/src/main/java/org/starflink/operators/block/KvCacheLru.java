package org.starflink.operators.block;

import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import org.starflink.engine.backend.KvCache;

/**
 * An operator-local, size-bounded cache of decoded KV, so that phase 2 does not deserialize a block's pages from
 * RocksDB for every layer of every question. Not state: it is rebuilt from the pages after a restore. It owns the
 * caches it holds (backend memory: device memory on a GPU) and closes each one it evicts or removes.
 */
final class KvCacheLru {
    private final long maxBytes;
    private final LinkedHashMap<String, KvCache> entries = new LinkedHashMap<>(16, 0.75f, true);
    private long bytes;

    KvCacheLru(long maxBytes) {
        this.maxBytes = maxBytes;
    }

    KvCache get(String key) {
        return entries.get(key);
    }

    void put(String key, KvCache cache) {
        if (entries.get(key) == cache) {
            return;
        }
        remove(key);
        entries.put(key, cache);
        bytes += cache.bytes();
        Iterator<Map.Entry<String, KvCache>> eldest = entries.entrySet().iterator();
        while (bytes > maxBytes && entries.size() > 1 && eldest.hasNext()) {
            Map.Entry<String, KvCache> entry = eldest.next();
            if (entry.getKey().equals(key)) {
                continue;
            }
            bytes -= entry.getValue().bytes();
            entry.getValue().close();
            eldest.remove();
        }
    }

    void remove(String key) {
        KvCache removed = entries.remove(key);
        if (removed != null) {
            bytes -= removed.bytes();
            removed.close();
        }
    }

    /** Closes every cache held. */
    void clear() {
        entries.values().forEach(KvCache::close);
        entries.clear();
        bytes = 0;
    }

    long bytes() {
        return bytes;
    }
}
