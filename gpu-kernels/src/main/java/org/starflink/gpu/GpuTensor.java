package org.starflink.gpu;

import org.starflink.engine.backend.AbstractTensor;
import org.starflink.engine.backend.HandleLedger;

/** A tensor in device memory: float32 (the residual stream, projections, partials) or BF16 (GEMM and attention
 *  inputs). Its memory comes from and goes back to the context's cache. */
final class GpuTensor extends AbstractTensor {
    enum DType {
        F32(4), BF16(2), I32(4);

        final int bytes;

        DType(int bytes) {
            this.bytes = bytes;
        }
    }

    final DType dtype;
    private final GpuContext context;
    private final long bytes;
    private final long ptr;

    GpuTensor(HandleLedger ledger, GpuContext context, DType dtype, int... shape) {
        super(ledger, shape);
        this.dtype = dtype;
        this.context = context;
        this.bytes = elements() * dtype.bytes;
        this.ptr = context.allocate(bytes);
    }

    /** The device pointer (backends only; valid while open). */
    long ptr() {
        if (!isOpen()) {
            throw new IllegalStateException(this + " used after it was closed");
        }
        return ptr;
    }

    @Override
    protected void release() {
        context.release(ptr, bytes);
    }
}
