package org.starflink.benchmarks;

import com.sun.management.OperatingSystemMXBean;
import com.sun.management.ThreadMXBean;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.function.Function;
import jdk.jfr.Configuration;
import jdk.jfr.Recording;
import jdk.jfr.consumer.RecordedEvent;
import jdk.jfr.consumer.RecordedFrame;
import jdk.jfr.consumer.RecordedStackTrace;
import jdk.jfr.consumer.RecordingFile;
import org.starflink.engine.backend.Backend;
import org.starflink.engine.backend.BackendKind;
import org.starflink.engine.forward.Transformer;
import org.starflink.engine.generate.GlobalSession;
import org.starflink.engine.model.Model;
import org.starflink.engine.model.RandomWeights;

/**
 * Where the engine's time goes per token on the short-work rows of {@link EngineBenchmark} (the rows where
 * per-call overhead, not arithmetic, dominates), in measures that a loaded, shared machine disturbs far less than
 * wall time: process CPU time and heap bytes allocated per token, calls and time per backend op per token (through
 * {@link ProfiledBackend}, a timing decorator over the {@code Backend} interface), and optionally a JFR recording
 * of the measured repetitions with the main thread's samples attributed to the backend op and to named causes.
 *
 * <p>Only API that the engine had before the Backend redesign (4cbe055) and has after it is used here, so that
 * {@code bin/benchmark engine-profile-vs 4cbe055} compiles this same file against the old engine, with the old
 * interface's {@code ProfiledBackend} from {@code benchmarks/profile/4cbe055/}.
 *
 * <p>Usage: {@code bin/benchmark engine-profile [--cases stories-ref,stories-djl,synth-ref,synth-djl]
 * [--reps N] [--warmups N] [--per-rep] [--kv bf16|f32] [--jfr DIR] [--no-ops] [--torch-threads N|default]}
 */
public final class EngineProfile {
    private record Case(String name, String model, BackendKind kind, int prompt, int decode, int reps) {
    }

    private static final List<Case> CASES = List.of(
            new Case("stories-ref", "stories260K", BackendKind.REFERENCE, 256, 128, 12),
            new Case("stories-djl", "stories260K", BackendKind.DJL, 256, 128, 12),
            new Case("synth-ref", "synthetic-100M", BackendKind.REFERENCE, 32, 8, 2),
            new Case("synth-djl", "synthetic-100M", BackendKind.DJL, 32, 8, 12),
            new Case("synth-djl-1k", "synthetic-100M", BackendKind.DJL, 1024, 64, 2));

    /** Per repetition and phase: wall, process CPU, main-thread CPU (ns), heap bytes allocated, and the ops. */
    private record Sample(long wallNanos, long cpuNanos, long threadCpuNanos, long allocatedBytes,
                          Map<String, long[]> ops) {
    }

    private static final OperatingSystemMXBean OS =
            (OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
    private static final ThreadMXBean THREADS = (ThreadMXBean) ManagementFactory.getThreadMXBean();

    public static void main(String[] args) throws Exception {
        Map<String, String> options = options(args);
        List<String> names = List.of(options.getOrDefault("cases", "stories-ref,stories-djl,synth-ref,synth-djl")
                .split(","));
        String kv = options.getOrDefault("kv", "default");
        boolean timed = !options.containsKey("no-ops");
        Path jfrDir = options.containsKey("jfr") ? Path.of(options.get("jfr")) : null;
        // libtorch's threads spin while they wait: on a loaded 2-core machine its time per token varies 3-10x
        // between runs with two threads, while one thread keeps CPU time = work (default here: 1).
        String threads = options.getOrDefault("torch-threads", "1");
        if (!threads.equals("default")) {
            System.setProperty("ai.djl.pytorch.num_threads", threads);
            System.setProperty("ai.djl.pytorch.num_interop_threads", "1");
        }
        System.out.println("# Engine profile, short-work rows: per token, medians over repetitions");
        System.out.println("# machine: " + Machine.describe() + ", load average " + loadAverage());
        System.out.println("# engine: " + ProfiledBackend.engineName() + ", kv " + kv + ", op timing " + timed
                + ", libtorch threads " + threads);
        Model stories = null;
        Model synthetic = null;
        for (String name : names) {
            Case c = CASES.stream().filter(x -> x.name().equals(name)).findFirst()
                    .orElseThrow(() -> new IllegalArgumentException("unknown case " + name));
            Model model;
            if (c.model().equals("stories260K")) {
                model = stories != null ? stories : (stories = Stories260K.load());
            } else {
                model = synthetic != null ? synthetic : (synthetic = EngineBenchmark.synthetic100M());
            }
            int reps = Integer.parseInt(options.getOrDefault("reps", String.valueOf(c.reps())));
            int warmups = Integer.parseInt(options.getOrDefault("warmups", "3"));
            runCase(c, model, kv, timed, warmups, reps, jfrDir, options.containsKey("per-rep"));
        }
    }

    private static void runCase(Case c, Model model, String kv, boolean timed, int warmups, int reps, Path jfrDir,
                                boolean perRep) throws IOException, java.text.ParseException {
        Backend backend = ProfiledBackend.create(c.kind(), model, kv, timed);
        Transformer transformer = new Transformer(backend);
        for (int i = 0; i < warmups; i++) { // first-call costs (libtorch threads, JIT) stay out of the numbers
            generate(c, transformer, 1000 + i, null);
        }
        ProfiledBackend.drain();
        Recording recording = null;
        if (jfrDir != null) {
            recording = new Recording(Configuration.getConfiguration("profile"));
            // One sampling period for Java and native frames, so that their counts add up to the thread's time.
            recording.enable("jdk.ExecutionSample").withPeriod(Duration.ofMillis(2));
            recording.enable("jdk.NativeMethodSample").withPeriod(Duration.ofMillis(2));
            recording.start();
        }
        List<Sample> prefill = new ArrayList<>();
        List<Sample> decode = new ArrayList<>();
        List<Instant[]> prefillSpans = new ArrayList<>();
        List<Instant[]> decodeSpans = new ArrayList<>();
        for (int rep = 0; rep < reps; rep++) {
            Sample[] phases = generate(c, transformer, rep, new List[] {prefillSpans, decodeSpans});
            prefill.add(phases[0]);
            decode.add(phases[1]);
        }
        System.out.printf("%n## %s: %s %s, prompt %d, decode %d, %d repetitions, load average %s%n", c.name(),
                c.model(), c.kind().name().toLowerCase(), c.prompt(), c.decode(), reps, loadAverage());
        System.out.printf("%-8s %12s %12s %12s %12s %14s%n", "phase", "wall us/tok", "min wall", "cpu us/tok",
                "main cpu", "alloc B/tok");
        report("prefill", prefill, c.prompt());
        report("decode", decode, c.decode());
        if (perRep) { // how the JIT warms up: EngineBenchmark measures the generation right after one warm-up
            System.out.print("  per repetition, main-thread CPU us/token, prefill | decode:");
            for (int i = 0; i < reps; i++) {
                System.out.printf(" %.0f|%.0f", prefill.get(i).threadCpuNanos() / 1e3 / c.prompt(),
                        decode.get(i).threadCpuNanos() / 1e3 / c.decode());
            }
            System.out.println();
        }
        if (timed) {
            reportOps("prefill", prefill, c.prompt());
            reportOps("decode", decode, c.decode());
        }
        if (recording != null) {
            recording.stop();
            Files.createDirectories(jfrDir);
            Path file = jfrDir.resolve(c.name() + ".jfr");
            recording.dump(file);
            recording.close();
            System.out.println("# JFR: " + file);
            JfrReport.print(file, "prefill", prefillSpans, c.prompt() * (long) reps);
            JfrReport.print(file, "decode", decodeSpans, c.decode() * (long) reps);
        }
        backend.close();
    }

    /** One generation as EngineBenchmark runs it: prefill the prompt, then decode greedily. */
    @SuppressWarnings("unchecked")
    private static Sample[] generate(Case c, Transformer transformer, long seed, List<Instant[]>[] spans) {
        int vocab = transformer.backend().config().vocabSize();
        int[] prompt = RandomWeights.tokens(new Random(seed), c.prompt(), vocab);
        GlobalSession session = new GlobalSession(transformer, c.prompt() + c.decode());
        try {
            ProfiledBackend.drain();
            Instant start = Instant.now();
            long[] before = counters();
            float[] logits = session.feed(prompt);
            Sample prefill = sample(before, ProfiledBackend.drain());
            Instant middle = Instant.now();
            before = counters();
            for (int i = 0; i < c.decode(); i++) {
                logits = session.feed(new int[] {argmax(logits)});
            }
            Sample decode = sample(before, ProfiledBackend.drain());
            if (spans != null) {
                spans[0].add(new Instant[] {start, middle});
                spans[1].add(new Instant[] {middle, Instant.now()});
            }
            return new Sample[] {prefill, decode};
        } finally {
            ProfiledBackend.close(session);
        }
    }

    private static long[] counters() {
        return new long[] {System.nanoTime(), OS.getProcessCpuTime(), THREADS.getCurrentThreadCpuTime(),
                THREADS.getCurrentThreadAllocatedBytes()};
    }

    private static Sample sample(long[] before, Map<String, long[]> ops) {
        long[] after = counters();
        return new Sample(after[0] - before[0], after[1] - before[1], after[2] - before[2], after[3] - before[3],
                ops);
    }

    private static void report(String phase, List<Sample> samples, int tokens) {
        System.out.printf("%-8s %12.1f %12.1f %12.1f %12.1f %14.0f%n", phase,
                median(samples, s -> (double) s.wallNanos()) / 1e3 / tokens,
                samples.stream().mapToLong(Sample::wallNanos).min().orElse(0) / 1e3 / tokens,
                median(samples, s -> (double) s.cpuNanos()) / 1e3 / tokens,
                median(samples, s -> (double) s.threadCpuNanos()) / 1e3 / tokens,
                median(samples, s -> (double) s.allocatedBytes()) / tokens);
    }

    /**
     * Calls, median wall and median main-thread CPU time per op per token; "outside ops" is the phase's time not
     * spent in an op (the engine's own glue: arenas, the layer step, KV appends before the redesign).
     */
    private static void reportOps(String phase, List<Sample> samples, int tokens) {
        TreeMap<String, Boolean> names = new TreeMap<>();
        samples.forEach(s -> s.ops().keySet().forEach(k -> names.put(k, true)));
        System.out.printf("  %-8s %-22s %10s %10s %10s%n", phase, "op", "calls/tok", "wall us", "cpu us");
        for (String op : names.keySet()) {
            double calls = median(samples, s -> (double) s.ops().getOrDefault(op, new long[3])[0]) / tokens;
            double wall = median(samples, s -> (double) s.ops().getOrDefault(op, new long[3])[1]) / 1e3 / tokens;
            double cpu = median(samples, s -> (double) s.ops().getOrDefault(op, new long[3])[2]) / 1e3 / tokens;
            System.out.printf("  %-8s %-22s %10.2f %10.2f %10.2f%n", "", op, calls, wall, cpu);
        }
        double outsideWall = median(samples, s -> (double) (s.wallNanos()
                - s.ops().values().stream().mapToLong(v -> v[1]).sum())) / 1e3 / tokens;
        double outsideCpu = median(samples, s -> (double) (s.threadCpuNanos()
                - s.ops().values().stream().mapToLong(v -> v[2]).sum())) / 1e3 / tokens;
        System.out.printf("  %-8s %-22s %10s %10.2f %10.2f%n", "", "(outside ops)", "", outsideWall, outsideCpu);
    }

    private static double median(List<Sample> samples, Function<Sample, Double> value) {
        double[] values = samples.stream().mapToDouble(value::apply).sorted().toArray();
        int n = values.length;
        return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
    }

    private static int argmax(float[] logits) {
        int best = 0;
        for (int i = 1; i < logits.length; i++) {
            if (logits[i] > logits[best]) {
                best = i;
            }
        }
        return best;
    }

    static String loadAverage() {
        try {
            String[] fields = Files.readString(Path.of("/proc/loadavg")).trim().split(" ");
            return fields[0] + " " + fields[1] + " " + fields[2];
        } catch (IOException e) {
            return "unknown";
        }
    }

    private static Map<String, String> options(String[] args) {
        Map<String, String> options = new HashMap<>();
        for (int i = 0; i < args.length; i++) {
            String key = args[i].replaceFirst("^--", "");
            boolean flag = i + 1 >= args.length || args[i + 1].startsWith("--");
            options.put(key, flag ? "" : args[++i]);
        }
        return options;
    }

    /**
     * The main thread's JFR samples (Java and native frames, one period) within one phase's time spans, attributed
     * (1) to the backend op on the stack, (2) to named causes anywhere on the stack, (3) by the topmost frame; and
     * the sampled allocation bytes by allocating frame.
     */
    static final class JfrReport {
        /** Stack frames that name a cause; the first match from the top of the stack wins. */
        private static final Map<String, String> CAUSES = new LinkedHashMap<>();

        static {
            CAUSES.put("Bf16Rows.widen", "BF16 widening of KV rows");
            CAUSES.put("Bf16.toFloat", "BF16 widening of KV rows");
            CAUSES.put("Bf16Rows.put", "BF16 rounding on KV append");
            CAUSES.put("NDIndex.<init>", "NDIndex string parse (rows slice)");
            CAUSES.put("tempAttach", "DJL temporary attachment");
            CAUSES.put("returnResource", "DJL temporary attachment");
            CAUSES.put("NDArray.attach", "DJL attach to the base manager");
            CAUSES.put("PtNDArray.attach", "DJL attach to the base manager");
            CAUSES.put("newSubManager", "DJL sub-manager open/close");
            CAUSES.put("BaseNDManager.close", "DJL sub-manager open/close");
            CAUSES.put("Arena.", "Arena bookkeeping");
            CAUSES.put("AbstractTensor.", "tensor handle bookkeeping");
            CAUSES.put("HandleLedger.", "tensor handle bookkeeping");
            CAUSES.put("Tensor.requireShape", "shape checks");
            CAUSES.put("PyTorchLibrary.", "libtorch (JNI)");
            CAUSES.put("Rope.apply", "RoPE (Java)");
        }

        private static final String[] OPS = {"embed", "projectQkv", "attend", "attendBoth", "merge", "finishLayer",
            "rows", "logits", "upload", "download", "append"};

        static void print(Path file, String phase, List<Instant[]> spans, long tokens) throws IOException {
            Map<String, Integer> byOp = new TreeMap<>();
            Map<String, Integer> byCause = new TreeMap<>();
            Map<String, Integer> byTop = new HashMap<>();
            Map<String, Long> allocByFrame = new HashMap<>();
            int total = 0;
            long allocTotal = 0;
            for (RecordedEvent event : RecordingFile.readAllEvents(file)) {
                String type = event.getEventType().getName();
                boolean sample = type.equals("jdk.ExecutionSample") || type.equals("jdk.NativeMethodSample");
                boolean alloc = type.equals("jdk.ObjectAllocationSample");
                if ((!sample && !alloc) || !within(event.getStartTime(), spans)) {
                    continue;
                }
                RecordedStackTrace stack = event.getStackTrace();
                String thread = sample ? event.getThread("sampledThread").getJavaName()
                        : event.getThread("eventThread").getJavaName();
                if (stack == null || !"main".equals(thread)) {
                    continue;
                }
                List<RecordedFrame> frames = stack.getFrames();
                if (alloc) {
                    long weight = event.getLong("weight");
                    allocTotal += weight;
                    String where = frames.isEmpty() ? "?" : name(frames.get(0)) + " <- "
                            + (frames.size() > 1 ? name(frames.get(1)) : "");
                    allocByFrame.merge(event.getClass("objectClass").getName() + " @ " + where, weight, Long::sum);
                    continue;
                }
                total++;
                byOp.merge(op(frames), 1, Integer::sum);
                byCause.merge(cause(frames), 1, Integer::sum);
                byTop.merge(frames.isEmpty() ? "?" : name(frames.get(0)), 1, Integer::sum);
            }
            System.out.printf("### JFR %s: %d main-thread samples (Java + native, 2 ms), %d tokens%n", phase, total,
                    tokens);
            print("by backend op (outermost on the stack)", byOp, total, tokens, 20);
            print("by named cause (innermost match)", byCause, total, tokens, 20);
            print("by top frame", byTop, total, tokens, 15);
            System.out.printf("  allocation samples: %.0f B/token (JFR-weighted); top sites:%n",
                    allocTotal / (double) tokens);
            allocByFrame.entrySet().stream().sorted((a, b) -> Long.compare(b.getValue(), a.getValue())).limit(12)
                    .forEach(e -> System.out.printf("    %8.0f B/tok  %s%n", e.getValue() / (double) tokens,
                            e.getKey()));
        }

        private static void print(String title, Map<String, Integer> counts, int total, long tokens, int limit) {
            System.out.println("  " + title + ": share, us/token (samples x 2 ms / tokens)");
            counts.entrySet().stream().sorted((a, b) -> Integer.compare(b.getValue(), a.getValue())).limit(limit)
                    .forEach(e -> System.out.printf("    %6.1f%% %9.1f  %s%n", 100.0 * e.getValue() / total,
                            e.getValue() * 2000.0 / tokens, e.getKey()));
        }

        private static boolean within(Instant t, List<Instant[]> spans) {
            for (Instant[] span : spans) {
                if (!t.isBefore(span[0]) && t.isBefore(span[1])) {
                    return true;
                }
            }
            return false;
        }

        private static String name(RecordedFrame frame) {
            String type = frame.getMethod().getType().getName();
            return type.substring(type.lastIndexOf('.') + 1) + "." + frame.getMethod().getName();
        }

        /** The outermost frame of a backend (or KV cache) class that is one of the interface's ops. */
        private static String op(List<RecordedFrame> frames) {
            for (int i = frames.size() - 1; i >= 0; i--) {
                String type = frames.get(i).getMethod().getType().getName();
                String method = frames.get(i).getMethod().getName();
                boolean backendClass = type.endsWith("Backend") || type.endsWith("KvCache");
                if (backendClass && !type.endsWith("ProfiledBackend$Timed") && Arrays.asList(OPS).contains(method)
                        && !type.contains("benchmarks")) {
                    return type.substring(type.lastIndexOf('.') + 1) + "." + method;
                }
            }
            for (RecordedFrame frame : frames) {
                String n = name(frame);
                if (n.startsWith("Transformer.") || n.startsWith("LayerStep.") || n.startsWith("Arena.")
                        || n.startsWith("GlobalSession.")) {
                    return "(engine outside ops: " + n + ")";
                }
            }
            return "(other: " + (frames.isEmpty() ? "?" : name(frames.get(0))) + ")";
        }

        private static String cause(List<RecordedFrame> frames) {
            for (RecordedFrame frame : frames) {
                String n = frame.getMethod().getType().getName() + "." + frame.getMethod().getName();
                for (Map.Entry<String, String> e : CAUSES.entrySet()) {
                    if (n.contains(e.getKey())) {
                        return e.getValue();
                    }
                }
            }
            return "(no named cause: " + (frames.isEmpty() ? "?" : name(frames.get(0))) + ")";
        }
    }
}
