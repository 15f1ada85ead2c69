package org.starflink.operators.block;

/** What a block operator remembers about its block besides the KV pages (a Flink POJO). */
public class BlockMeta {
    /** Tokens in the block (its KV length). */
    public int length;
    /** Global position of its first token. */
    public int start;
    /** Set by a DROP: the block is cleared once no request has arrived for the grace period. */
    public boolean retiring;
    /** Processing time of the last request (or of the DROP), for the retirement timer. */
    public long lastUsedMs;

    public BlockMeta() {
    }
}
