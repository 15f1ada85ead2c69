package org.starflink.engine.backend;

import java.util.ArrayList;
import java.util.List;

/**
 * The scope of a group of tensors: every tensor a backend op creates is registered in the arena passed to it,
 * and closing the arena frees them all (try-with-resources). A forward pass holds one arena for its residual
 * stream and opens one per layer for the layer's temporaries; the one tensor that must survive a layer is moved
 * to the outer arena with {@link #moveTo}. Not thread-safe: an arena has one owner.
 */
public final class Arena implements AutoCloseable {
    private final List<Tensor> owned = new ArrayList<>();
    private boolean closed;

    /** Registers a new tensor; backends call this for every tensor they hand out. */
    public <T extends Tensor> T own(T tensor) {
        if (closed) {
            tensor.close();
            throw new IllegalStateException("arena is closed");
        }
        owned.add(tensor);
        return tensor;
    }

    /** Hands {@code tensor} over to {@code target}: it then lives until {@code target} closes. */
    public <T extends Tensor> T moveTo(Arena target, T tensor) {
        for (int i = owned.size() - 1; i >= 0; i--) {
            if (owned.get(i) == tensor) {
                owned.remove(i);
                return target.own(tensor);
            }
        }
        throw new IllegalArgumentException("tensor does not belong to this arena");
    }

    /** Tensors registered here and not yet closed. */
    public int openTensors() {
        return (int) owned.stream().filter(Tensor::isOpen).count();
    }

    @Override
    public void close() {
        closed = true;
        for (int i = owned.size() - 1; i >= 0; i--) {
            owned.get(i).close();
        }
        owned.clear();
    }
}
