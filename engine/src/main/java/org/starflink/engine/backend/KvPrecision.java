package org.starflink.engine.backend;

import java.util.Locale;
import org.starflink.engine.EngineException;

/**
 * How a KV cache stores keys and values. BF16 is the default everywhere: half the bytes of float32 in memory,
 * in RocksDB and in checkpoints, at a relative rounding error of at most 2^-9 per element. F32 keeps them exact;
 * the tests that compare the engine with float32 references (Hugging Face transformers, llama2.c) use it.
 * Attention, merges and softmax statistics are float32 (or wider) in both.
 */
public enum KvPrecision {
    BF16(2),
    F32(4);

    /** Bytes per stored element. */
    public final int bytes;

    KvPrecision(int bytes) {
        this.bytes = bytes;
    }

    public static KvPrecision parse(String name) {
        try {
            return valueOf(name.trim().toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new EngineException("unknown KV precision '" + name + "' (choose bf16 or f32)");
        }
    }
}
