package org.starflink.engine;

/**
 * Unless told otherwise, DJL reaches out to the network: a telemetry ping on every tokenizer load, engine
 * downloads, and on a machine with CUDA a GPU build of the native tokenizers library. Everything the engine needs
 * is bundled in the jars, so pin offline mode and the CPU tokenizers build where the operator has not chosen (an
 * environment variable of the same name still wins). Called before the first DJL use by the backend and the
 * tokenizer.
 */
public final class DjlOffline {
    private DjlOffline() {
    }

    public static void ensure() {
        if (System.getenv("DJL_OFFLINE") == null && System.getProperty("ai.djl.offline") == null) {
            System.setProperty("ai.djl.offline", "true");
        }
        if (System.getenv("RUST_FLAVOR") == null && System.getProperty("RUST_FLAVOR") == null) {
            System.setProperty("RUST_FLAVOR", "cpu");
        }
    }
}
