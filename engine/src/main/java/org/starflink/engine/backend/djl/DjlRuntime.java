package org.starflink.engine.backend.djl;

import java.nio.file.Path;

/**
 * Keeps DJL offline. DJL's first engine or tokenizer use otherwise calls out over HTTP; on these machines that
 * fails slowly. The environment variable DJL_OFFLINE is read by DJL too; the system property is the one we can
 * set from Java before first use. DJL_CACHE_DIR (where libtorch is extracted once) defaults here to
 * ~/.djl.ai; the build and the launcher point it under the build directory.
 */
public final class DjlRuntime {
    private DjlRuntime() {
    }

    public static void ensureOffline() {
        System.setProperty("ai.djl.offline", "true");
        if (System.getenv("DJL_CACHE_DIR") == null && System.getProperty("DJL_CACHE_DIR") == null) {
            System.setProperty("DJL_CACHE_DIR", Path.of(System.getProperty("user.home"), ".djl.ai").toString());
        }
    }
}
