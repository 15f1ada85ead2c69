package org.starflink.gpu;

import org.starflink.engine.EngineException;

/** A failed CUDA / cuBLAS call, with the native library's one-line message naming the call and the error. */
public final class GpuException extends EngineException {
    public GpuException(String message) {
        super(message);
    }
}
