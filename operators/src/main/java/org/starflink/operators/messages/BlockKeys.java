package org.starflink.operators.messages;

/**
 * The key of a context block: document, version, block index. The version is part of it so that a new version
 * of a document never overwrites the KV that questions on the old version are still reading.
 */
public final class BlockKeys {
    private BlockKeys() {
    }

    public static String of(String docId, long version, int block) {
        return docId + "@" + version + "#" + block;
    }
}
