package org.starflink.engine.backend.djl;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import org.junit.jupiter.api.Test;

/** libtorch's threads per op: the first choice stands (the operator's, else the first caller's), at least one. */
class LibtorchThreadsTest {

    @Test
    void theFirstChoiceStandsAndIsAtLeastOne() {
        assumeTrue(System.getenv("OMP_NUM_THREADS") == null, "OMP_NUM_THREADS is set: the operator's choice wins");
        String intraBefore = System.getProperty(LibtorchThreads.INTRA_OP);
        String interBefore = System.getProperty(LibtorchThreads.INTER_OP);
        try {
            System.clearProperty(LibtorchThreads.INTRA_OP);
            LibtorchThreads.ensure(3);
            LibtorchThreads.ensure(1); // a backend created later keeps what the process chose
            assertEquals("3", System.getProperty(LibtorchThreads.INTRA_OP));
            assertEquals("1", System.getProperty(LibtorchThreads.INTER_OP));
            System.clearProperty(LibtorchThreads.INTRA_OP);
            LibtorchThreads.ensure(0); // more task threads than cores
            assertEquals("1", System.getProperty(LibtorchThreads.INTRA_OP));
        } finally {
            restore(LibtorchThreads.INTRA_OP, intraBefore);
            restore(LibtorchThreads.INTER_OP, interBefore);
        }
    }

    private static void restore(String key, String value) {
        if (value == null) {
            System.clearProperty(key);
        } else {
            System.setProperty(key, value);
        }
    }
}
