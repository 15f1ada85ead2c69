package org.starflink.engine.backend;

/** A float32 tensor in a Java array on the heap: the CPU backends' host-side tensor. */
public final class HostTensor extends AbstractTensor {
    private float[] data;

    public HostTensor(HandleLedger ledger, float[] data, int... shape) {
        super(ledger, shape);
        if (elements() != data.length) {
            throw new IllegalArgumentException(data.length + " values for shape " + java.util.Arrays.toString(shape));
        }
        this.data = data;
    }

    /** The values, row-major; not a copy (backends only). */
    public float[] data() {
        if (!isOpen()) {
            throw new IllegalStateException(this + " used after it was closed");
        }
        return data;
    }

    @Override
    protected void release() {
        data = null;
    }
}
