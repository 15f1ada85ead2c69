package org.starflink.operators.messages;

/**
 * The key of a context block: document, version, block index. The version is part of it so that a new version
 * of a document never overwrites the KV that questions on the old version are still reading.
 */
public final class BlockKeys {
    private BlockKeys() {
    }

    public static String of(String docId, long version, int block) {
        return documentVersion(docId, version) + "#" + block;
    }

    /**
     * The key of one version of a document: the query host's key (every question on that version shares one host,
     * so that their layer requests travel together) and the prefix of its blocks' keys.
     */
    public static String documentVersion(String docId, long version) {
        return docId + "@" + version;
    }

    /** A key's document, version and block. */
    public record Parts(String docId, long version, int block) {
    }

    /**
     * The parts of a key made by {@link #of}. Unambiguous whatever the doc_id holds: version and block are numbers,
     * so the last '#' and the last '@' before it are the separators.
     */
    public static Parts parse(String key) {
        int hash = key.lastIndexOf('#');
        int at = key.lastIndexOf('@', hash);
        if (hash < 0 || at < 0) {
            throw new IllegalArgumentException("not a block key: " + key);
        }
        return new Parts(key.substring(0, at), Long.parseLong(key.substring(at + 1, hash)),
                Integer.parseInt(key.substring(hash + 1)));
    }
}
