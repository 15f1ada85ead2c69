package org.starflink.engine.backend.djl;

import ai.djl.ndarray.NDArray;
import org.starflink.engine.backend.AbstractTensor;
import org.starflink.engine.backend.HandleLedger;

/** A float32 tensor in libtorch's native memory: the DJL backend's result of the matrix ops. */
final class DjlTensor extends AbstractTensor {
    private NDArray array;

    /** Takes ownership of {@code array}, which must be attached to a manager that outlives the tensor. */
    DjlTensor(HandleLedger ledger, NDArray array) {
        super(ledger, Math.toIntExact(array.getShape().get(0)), Math.toIntExact(array.getShape().get(1)));
        this.array = array;
    }

    NDArray array() {
        return array;
    }

    @Override
    protected void release() {
        array.close();
        array = null;
    }
}
