package org.starflink.engine.backend.djl;

/**
 * libtorch runs each op on one thread unless the operator chose otherwise ({@code OMP_NUM_THREADS}, or DJL's
 * {@code ai.djl.pytorch.num_threads}). The job's parallelism is Flink's: every slot's task thread calls libtorch on
 * its own, so an intra-op pool per op only oversubscribes the TaskManager's cores, and its OpenMP workers spin
 * between ops. Measured on the 2-core machine at 16 questions on one document (parallelism 2, libtorch's default
 * of one thread per core): the OpenMP workers used more CPU than both block operators together (docs/performance.md).
 * Set before DJL starts the engine; a setting made later does not change a running engine.
 */
final class LibtorchThreads {
    static final String INTRA_OP = "ai.djl.pytorch.num_threads";
    static final String INTER_OP = "ai.djl.pytorch.num_interop_threads";

    private LibtorchThreads() {
    }

    static void ensure() {
        if (System.getenv("OMP_NUM_THREADS") != null || System.getProperty(INTRA_OP) != null) {
            return; // the operator's choice
        }
        System.setProperty(INTRA_OP, "1");
        if (System.getProperty(INTER_OP) == null) {
            System.setProperty(INTER_OP, "1");
        }
    }
}
