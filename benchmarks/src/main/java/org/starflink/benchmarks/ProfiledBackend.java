package org.starflink.benchmarks;

import java.nio.ByteBuffer;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.starflink.engine.attention.AttentionPartial;
import org.starflink.engine.backend.Arena;
import org.starflink.engine.backend.Backend;
import org.starflink.engine.backend.BackendKind;
import org.starflink.engine.backend.KvCache;
import org.starflink.engine.backend.KvPrecision;
import org.starflink.engine.backend.Partial;
import org.starflink.engine.backend.Qkv;
import org.starflink.engine.backend.Tensor;
import org.starflink.engine.generate.GlobalSession;
import org.starflink.engine.model.Model;
import org.starflink.engine.model.ModelConfig;

/**
 * {@link EngineProfile}'s view of this engine's Backend interface: creates a backend (with the KV precision asked
 * for) and, when timed, wraps it in a decorator that counts calls and nanoseconds per op, KV appends included.
 * {@code benchmarks/profile/4cbe055/ProfiledBackend.java} is the same for the interface before the redesign.
 * Benchmark code only: nothing in the engine knows about it. Single-threaded.
 */
final class ProfiledBackend {
    private static final Map<String, long[]> OPS = new HashMap<>();

    private ProfiledBackend() {
    }

    static String engineName() {
        return "after the Backend redesign (tensor handles, LayerStep, BF16 KV)";
    }

    /** @param kv "default" (the backend's default, BF16), "bf16" or "f32" */
    static Backend create(BackendKind kind, Model model, String kv, boolean timed) {
        KvPrecision precision = kv.equals("default") ? KvPrecision.BF16 : KvPrecision.parse(kv);
        Backend backend = kind.create(model, precision, 0);
        return timed ? new Timed(backend) : backend;
    }

    static void close(GlobalSession session) {
        session.close();
    }

    /** Calls and nanoseconds per op since the last drain; resets them. */
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

        private static KvCache unwrap(KvCache cache) {
            return cache instanceof TimedCache timed ? timed.inner : cache;
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
        public KvPrecision kvPrecision() {
            return inner.kvPrecision();
        }

        @Override
        public Tensor embed(Arena arena, int[] tokens) {
            long t = start();
            try {
                return inner.embed(arena, tokens);
            } finally {
                record("embed", t);
            }
        }

        @Override
        public Tensor upload(Arena arena, float[] values, int... shape) {
            long t = start();
            try {
                return inner.upload(arena, values, shape);
            } finally {
                record("upload", t);
            }
        }

        @Override
        public float[] download(Tensor tensor) {
            long t = start();
            try {
                return inner.download(tensor);
            } finally {
                record("download", t);
            }
        }

        @Override
        public Tensor rows(Arena arena, Tensor x, int from, int to) {
            long t = start();
            try {
                return inner.rows(arena, x, from, to);
            } finally {
                record("rows", t);
            }
        }

        @Override
        public Qkv projectQkv(Arena arena, int layer, Tensor x, int[] positions) {
            long t = start();
            try {
                return inner.projectQkv(arena, layer, x, positions);
            } finally {
                record("projectQkv", t);
            }
        }

        @Override
        public KvCache newKvCache(int expectedTokens) {
            return new TimedCache(inner.newKvCache(expectedTokens));
        }

        @Override
        public Partial attend(Arena arena, Tensor q, int[] queryPositions, KvCache cache, int layer) {
            long t = start();
            try {
                return inner.attend(arena, q, queryPositions, unwrap(cache), layer);
            } finally {
                record("attend", t);
            }
        }

        @Override
        public Partial attendBoth(Arena arena, Tensor q, int[] queryPositions, KvCache first, KvCache second,
                                  int layer) {
            long t = start();
            try {
                return inner.attendBoth(arena, q, queryPositions, unwrap(first), unwrap(second), layer);
            } finally {
                record("attendBoth", t);
            }
        }

        @Override
        public Partial merge(Arena arena, List<Partial> partials) {
            long t = start();
            try {
                return inner.merge(arena, partials);
            } finally {
                record("merge", t);
            }
        }

        @Override
        public Tensor finishLayer(Arena arena, int layer, Tensor x, Tensor attention) {
            long t = start();
            try {
                return inner.finishLayer(arena, layer, x, attention);
            } finally {
                record("finishLayer", t);
            }
        }

        @Override
        public float[] logits(Tensor x) {
            long t = start();
            try {
                return inner.logits(x);
            } finally {
                record("logits", t);
            }
        }

        @Override
        public long liveHandles() {
            return inner.liveHandles();
        }

        @Override
        public AttentionPartial download(Partial partial) {
            return inner.download(partial);
        }

        @Override
        public Partial upload(Arena arena, AttentionPartial partial) {
            return inner.upload(arena, partial);
        }

        @Override
        public void close() {
            inner.close();
        }
    }

    private static final class TimedCache implements KvCache {
        private final KvCache inner;

        TimedCache(KvCache inner) {
            this.inner = inner;
        }

        @Override
        public void seal() {
            inner.seal();
        }

        @Override
        public int layers() {
            return inner.layers();
        }

        @Override
        public int kvWidth() {
            return inner.kvWidth();
        }

        @Override
        public KvPrecision precision() {
            return inner.precision();
        }

        @Override
        public int length() {
            return inner.length();
        }

        @Override
        public int length(int layer) {
            return inner.length(layer);
        }

        @Override
        public int[] positions(int layer, int from, int to) {
            return inner.positions(layer, from, to);
        }

        @Override
        public void append(int layer, int[] positions, Tensor k, Tensor v) {
            long t = start();
            try {
                inner.append(layer, positions, k, v);
            } finally {
                record("kv.append", t);
            }
        }

        @Override
        public void read(int layer, int from, int to, ByteBuffer keys, ByteBuffer values) {
            inner.read(layer, from, to, keys, values);
        }

        @Override
        public void write(int layer, int[] positions, KvPrecision precision, ByteBuffer keys, ByteBuffer values) {
            inner.write(layer, positions, precision, keys, values);
        }

        @Override
        public long bytes() {
            return inner.bytes();
        }

        @Override
        public boolean isOpen() {
            return inner.isOpen();
        }

        @Override
        public void close() {
            inner.close();
        }
    }
}
