package org.starflink.engine.testing;

import java.nio.file.Files;
import java.nio.file.Path;
import org.starflink.engine.checkpoint.ModelRegistry;
import org.starflink.engine.model.Model;

/**
 * The read-only models next to the checkout ({@code ../shared}, or the system property starflink.shared.dir set
 * by the build). Tests read them in place; nothing is copied into the repository. A missing folder fails the
 * test loudly: CI has it, and a silently skipped exactness test would be worse than a red build.
 */
public final class SharedModels {
    private SharedModels() {
    }

    public static Path sharedDir() {
        Path dir = Path.of(System.getProperty("starflink.shared.dir", "../shared"));
        if (!Files.isDirectory(dir.resolve("models"))) {
            throw new IllegalStateException("shared models not found at " + dir.toAbsolutePath()
                    + " (set -Dstarflink.shared.dir)");
        }
        return dir;
    }

    public static Path stories260KDir() {
        return sharedDir().resolve("models/stories260K");
    }

    public static Model stories260K() {
        Path dir = stories260KDir();
        return ModelRegistry.model(dir.resolve("stories260K.bin"), dir.resolve("tok512.bin"));
    }
}
