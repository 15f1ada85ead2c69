package org.starflink.operators.block;

/**
 * What a block operator remembers about its block besides the KV pages (a Flink POJO). Its presence means the
 * block is encoded; the pages carry the KV and the positions.
 */
public class BlockMeta {
    /** Set by a DROP: the block is cleared once no request has arrived for the grace period. */
    public boolean retiring;
    /** Processing time of the last request (or of the DROP), for the retirement timer. */
    public long lastUsedMs;

    public BlockMeta() {
    }
}
