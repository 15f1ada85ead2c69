package org.starflink.engine.backend;

import org.slf4j.LoggerFactory;

/**
 * Whether this JVM resolved JDK 17's incubating Vector API ({@code --add-modules=jdk.incubator.vector}, which the
 * project's computing JVMs carry: the parent pom's {@code jvm.module.args}, {@code bin/starflink run}, the
 * deployments' env.java.opts.all).
 * With it the stacked attention's value loop runs in {@link VectorAttention}; without it the same numbers, bit for
 * bit, come from a scalar loop the JIT auto-vectorizes, more slowly. So a job whose TaskManagers differ in this flag
 * still answers the same.
 */
final class VectorApi {
    static final boolean PRESENT = ModuleLayer.boot().findModule("jdk.incubator.vector").isPresent();

    static {
        if (PRESENT) {
            LoggerFactory.getLogger(VectorApi.class).info("CPU attention value loop: Vector API, {} float lanes",
                    VectorAttention.lanes());
        } else {
            LoggerFactory.getLogger(VectorApi.class).info("CPU attention value loop: scalar (the same numbers, "
                    + "slower; --add-modules=jdk.incubator.vector on the JVM runs it in SIMD)");
        }
    }

    private VectorApi() {
    }
}
