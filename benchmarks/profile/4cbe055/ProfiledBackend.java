package org.starflink.benchmarks;

import java.util.HashMap;
import java.util.Map;
import org.starflink.engine.attention.AttentionPartial;
import org.starflink.engine.backend.Backend;
import org.starflink.engine.backend.BackendKind;
import org.starflink.engine.backend.QkvProjection;
import org.starflink.engine.forward.KvSpan;
import org.starflink.engine.generate.GlobalSession;
import org.starflink.engine.model.Model;
import org.starflink.engine.model.ModelConfig;

/**
 * EngineProfile's view of the engine BEFORE the Backend redesign (4cbe055: float[] in and out, float32 KV in
 * forward.KvCache, a final class that cannot be wrapped, so KV appends count as "outside ops"). Not part of the
 * Maven build: bin/benchmark engine-profile-vs compiles it with EngineProfile.java against that commit's engine.
 */
final class ProfiledBackend {
    private static final Map<String, long[]> OPS = new HashMap<>();

    private ProfiledBackend() {
    }

    static String engineName() {
        return "before the Backend redesign (4cbe055: float[] interface, float32 KV)";
    }

    static Backend create(BackendKind kind, Model model, String kv, boolean timed) {
        if (!kv.equals("default") && !kv.equals("f32")) {
            throw new IllegalArgumentException("the engine before the redesign has float32 KV only");
        }
        Backend backend = kind.create(model);
        return timed ? new Timed(backend) : backend;
    }

    static void close(GlobalSession session) {
        // nothing to close before the redesign
    }

    static Map<String, long[]> drain() {
        Map<String, long[]> copy = new HashMap<>();
        OPS.forEach((k, v) -> copy.put(k, v.clone()));
        OPS.clear();
        return copy;
    }

    private static final java.lang.management.ThreadMXBean THREADS =
            java.lang.management.ManagementFactory.getThreadMXBean();
    /** Main-thread CPU time when the current op began (ops do not nest: one decorator, single-threaded). */
    private static long cpuStart;

    /** Wall clock at the start of an op; also notes the thread's CPU time then. */
    static long start() {
        cpuStart = THREADS.getCurrentThreadCpuTime();
        return System.nanoTime();
    }

    /** Counts one call of {@code op}: {calls, wall ns, main-thread CPU ns}. */
    static void record(String op, long start) {
        long wall = System.nanoTime() - start;
        long cpu = THREADS.getCurrentThreadCpuTime() - cpuStart;
        long[] v = OPS.computeIfAbsent(op, k -> new long[3]);
        v[0]++;
        v[1] += wall;
        v[2] += cpu;
    }

    private static final class Timed implements Backend {
        private final Backend inner;

        Timed(Backend inner) {
            this.inner = inner;
        }

        @Override
        public String name() {
            return inner.name();
        }

        @Override
        public ModelConfig config() {
            return inner.config();
        }

        @Override
        public float[] embed(int[] tokens) {
            long t = start();
            try {
                return inner.embed(tokens);
            } finally {
                record("embed", t);
            }
        }

        @Override
        public QkvProjection projectQkv(int layer, float[] x, int[] positions) {
            long t = start();
            try {
                return inner.projectQkv(layer, x, positions);
            } finally {
                record("projectQkv", t);
            }
        }

        @Override
        public AttentionPartial attend(float[] q, int[] queryPositions, KvSpan kv) {
            long t = start();
            try {
                return inner.attend(q, queryPositions, kv);
            } finally {
                record("attend", t);
            }
        }

        @Override
        public float[] finishLayer(int layer, float[] x, float[] attention) {
            long t = start();
            try {
                return inner.finishLayer(layer, x, attention);
            } finally {
                record("finishLayer", t);
            }
        }

        @Override
        public float[] logits(float[] x) {
            long t = start();
            try {
                return inner.logits(x);
            } finally {
                record("logits", t);
            }
        }

        @Override
        public void close() {
            inner.close();
        }
    }
}
