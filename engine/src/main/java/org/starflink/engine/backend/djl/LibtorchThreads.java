package org.starflink.engine.backend.djl;

/**
 * libtorch runs each op on one thread unless the operator chose otherwise ({@code OMP_NUM_THREADS}, or DJL's
 * {@code ai.djl.pytorch.num_threads}). The job's parallelism is Flink's: every slot's task thread calls libtorch on
 * its own, so an intra-op pool per op only oversubscribes the TaskManager's cores, and its OpenMP workers spin
 * between ops. Measured on the 2-core machine at 16 questions on one document (parallelism 2, libtorch's default
 * of one thread per core; a by-hand async-profiler run): the OpenMP workers used more CPU than both block operators
 * together; decode at 16 questions is 3-15% faster on one thread, a 16K-token phase 1 at parallelism 1 43% slower
 * (docs/performance.md).
 * Set before DJL starts the engine; a setting made later does not change a running engine.
 */
public final class LibtorchThreads {
    static final String INTRA_OP = "ai.djl.pytorch.num_threads";
    static final String INTER_OP = "ai.djl.pytorch.num_interop_threads";

    private LibtorchThreads() {
    }

    /**
     * {@code threads} per op unless the operator (or an earlier call) chose: a process that knows it runs fewer task
     * threads than cores (a local cluster at parallelism 1: phase 1 encodes one block at a time) calls this before
     * any backend exists; the backend calls it with 1.
     */
    public static void ensure(int threads) {
        if (System.getenv("OMP_NUM_THREADS") != null || System.getProperty(INTRA_OP) != null) {
            return; // the operator's choice
        }
        System.setProperty(INTRA_OP, Integer.toString(Math.max(1, threads)));
        if (System.getProperty(INTER_OP) == null) {
            System.setProperty(INTER_OP, "1");
        }
    }
}
