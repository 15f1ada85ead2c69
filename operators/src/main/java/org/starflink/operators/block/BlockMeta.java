package org.starflink.operators.block;

/**
 * What a block operator remembers about its block besides the KV pages (a Flink POJO). Its presence means the
 * block is encoded, or was: once its KV is cleared it stays for a while as a tombstone ({@link #goneReason} set), so
 * that a request still arriving (a question admitted over the block that waited at the loop's cap) is answered
 * with the reason instead of waiting for an encoding that will not come. The pages carry the KV and the positions.
 */
public class BlockMeta {
    /** Set by a DROP: the block is cleared once no request has arrived for the grace period. */
    public boolean retiring;
    /** Processing time of the last request (or of the DROP), for the retirement timer. */
    public long lastUsedMs;
    /** Why the block's KV is gone (expired, or retired after a new version or a delete), or null while it is held. */
    public String goneReason;

    public BlockMeta() {
    }
}
