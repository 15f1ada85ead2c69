package org.starflink.benchmarks;

import java.nio.file.Path;
import org.starflink.engine.checkpoint.ModelRegistry;
import org.starflink.engine.model.Model;

/** The tiny real model, read in place from the shared folder (-Dstarflink.shared.dir, default ../shared). */
final class Stories260K {
    private Stories260K() {
    }

    static Model load() {
        Path dir = Path.of(System.getProperty("starflink.shared.dir", "../shared"), "models/stories260K");
        return ModelRegistry.model(dir.resolve("stories260K.bin"), dir.resolve("tok512.bin"));
    }
}
