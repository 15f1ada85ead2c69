package org.starflink.engine.backend;

import java.util.Arrays;

/**
 * A tensor owned by a backend: device memory for a GPU backend, native or heap memory for the CPU backends. The
 * caller sees only its shape; the values stay inside the backend until {@link Backend#download} brings them to
 * the host. Every tensor belongs to the {@link Arena} it was created in and dies with it (or earlier, by
 * {@link #close}); using a closed tensor throws.
 *
 * <p>Tensors that cross the {@link Backend} interface hold float32 values (a backend may store them otherwise,
 * e.g. BF16 activations on a GPU, as long as what it computes agrees with the reference within its tolerance).
 */
public interface Tensor extends AutoCloseable {

    /** Dimensions, outermost first (a copy). */
    int[] shape();

    /** Size of dimension {@code axis}. */
    int dim(int axis);

    /** Number of dimensions. */
    default int rank() {
        return shape().length;
    }

    boolean isOpen();

    /** Frees the tensor's memory now; idempotent. */
    @Override
    void close();

    /** Throws unless {@code tensor} is open and has exactly {@code dims}, naming {@code what} in the message. */
    static void requireShape(Tensor tensor, String what, int... dims) {
        if (!tensor.isOpen()) {
            throw new IllegalStateException(what + ": tensor used after it was closed");
        }
        boolean equal = tensor.rank() == dims.length; // dimension by dimension: no shape copy per check
        for (int i = 0; equal && i < dims.length; i++) {
            equal = tensor.dim(i) == dims[i];
        }
        if (!equal) {
            throw new IllegalArgumentException(what + " has shape " + Arrays.toString(tensor.shape())
                    + ", expected " + Arrays.toString(dims));
        }
    }
}
