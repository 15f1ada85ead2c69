package org.starflink.engine.backend;

import java.util.Arrays;

/** Shape, open/closed bookkeeping and ownership checks shared by the tensor classes of every backend. */
public abstract class AbstractTensor implements Tensor {
    private final int[] shape;
    private final HandleLedger ledger;
    private boolean open = true;

    protected AbstractTensor(HandleLedger ledger, int... shape) {
        this.ledger = ledger;
        this.shape = shape.clone();
        ledger.opened();
    }

    @Override
    public final int[] shape() {
        return shape.clone();
    }

    @Override
    public final int dim(int axis) {
        return shape[axis];
    }

    @Override
    public final int rank() {
        return shape.length;
    }

    /** Number of elements. */
    public final long elements() {
        long n = 1;
        for (int d : shape) {
            n *= d;
        }
        return n;
    }

    @Override
    public final boolean isOpen() {
        return open;
    }

    /** Throws unless the tensor is open and was made by the backend that keeps {@code owner}. */
    public final void checkUsableBy(HandleLedger owner) {
        if (ledger != owner) {
            throw new IllegalArgumentException("tensor " + Arrays.toString(shape) + " belongs to another backend");
        }
        if (!open) {
            throw new IllegalStateException("tensor " + Arrays.toString(shape) + " used after it was closed");
        }
    }

    @Override
    public final void close() {
        if (open) {
            open = false;
            release();
            ledger.closed();
        }
    }

    /** Frees the tensor's memory; called once. */
    protected abstract void release();

    @Override
    public String toString() {
        return getClass().getSimpleName() + Arrays.toString(shape) + (open ? "" : " (closed)");
    }
}
