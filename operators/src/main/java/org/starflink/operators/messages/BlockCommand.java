package org.starflink.operators.messages;

/**
 * From the document operator to a block operator (keyed by {@link #blockKey(int)}): encode a complete block, drop one,
 * or touch one (a question was admitted over it: its idle TTL starts again). A Flink POJO: public fields, a no-argument constructor, arrays rather than collections (no Kryo).
 */
public class BlockCommand {
    public enum Kind { ENCODE, DROP, TOUCH }

    public Kind kind;
    public String docId;
    /** The document version the block belongs to; part of the block's key. */
    public long version;
    /** Block index i: tokens [i * b, i * b + tokens.length) of the context. */
    public int block;
    /** Global position of the block's first token (i * b). */
    public int start;
    /** The block's tokens (ENCODE). */
    public int[] tokens;
    /** The document's anchor: its first a context tokens (ENCODE of a block > 0; empty for block 0). */
    public int[] anchorTokens;

    public BlockCommand() {
    }

    public static BlockCommand encode(String docId, long version, int block, int start, int[] tokens, int[] anchor) {
        BlockCommand c = new BlockCommand();
        c.kind = Kind.ENCODE;
        c.docId = docId;
        c.version = version;
        c.block = block;
        c.start = start;
        c.tokens = tokens;
        c.anchorTokens = anchor;
        return c;
    }

    public static BlockCommand drop(String docId, long version, int block) {
        return withoutTokens(Kind.DROP, docId, version, block);
    }

    /** A question was admitted over the block: it is in use from now on, though its first request may come later. */
    public static BlockCommand touch(String docId, long version, int block) {
        return withoutTokens(Kind.TOUCH, docId, version, block);
    }

    private static BlockCommand withoutTokens(Kind kind, String docId, long version, int block) {
        BlockCommand c = new BlockCommand();
        c.kind = kind;
        c.docId = docId;
        c.version = version;
        c.block = block;
        c.tokens = new int[0];
        c.anchorTokens = new int[0];
        return c;
    }

    /** The block's key in a job of {@code maxParallelism} key groups ({@link BlockKeys#of}). */
    public String blockKey(int maxParallelism) {
        return BlockKeys.of(docId, version, block, maxParallelism);
    }
}
