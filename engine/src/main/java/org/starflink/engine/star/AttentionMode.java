package org.starflink.engine.star;

import java.util.Locale;
import org.starflink.engine.EngineException;

/** How the context is attended: Star Attention's blocks, or one global block (the exact baseline). */
public enum AttentionMode {
    STAR, GLOBAL;

    public static AttentionMode parse(String name) {
        try {
            return valueOf(name.trim().toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new EngineException("unknown mode '" + name + "' (choose star or global)");
        }
    }
}
