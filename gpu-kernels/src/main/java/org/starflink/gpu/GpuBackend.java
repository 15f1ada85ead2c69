package org.starflink.gpu;

import java.util.ArrayList;
import java.util.List;
import org.starflink.engine.EngineException;
import org.starflink.engine.backend.Arena;
import org.starflink.engine.backend.Backend;
import org.starflink.engine.backend.HandleLedger;
import org.starflink.engine.backend.KvCache;
import org.starflink.engine.backend.KvPrecision;
import org.starflink.engine.backend.Partial;
import org.starflink.engine.backend.Qkv;
import org.starflink.engine.backend.Rope;
import org.starflink.engine.backend.Tensor;
import org.starflink.engine.model.ModelConfig;
import org.starflink.engine.model.RopeStyle;
import org.starflink.engine.model.WeightName;
import org.starflink.engine.model.WeightName.Kind;
import org.starflink.engine.model.WeightSource;
import org.starflink.engine.numeric.Bf16;
import org.starflink.gpu.GpuTensor.DType;

/**
 * The CUDA backend: weights uploaded once as BF16 (read from the checkpoint one tensor at a time as BF16 bits),
 * KV caches on the device in BF16, the residual stream in float32 on the device, GEMMs through cuBLAS (BF16 in,
 * float32 accumulate and out), and our kernels for the rest (gpu-kernels/src/*.cu). Only tokens, logits, the
 * phase-2 query rows and partials, and KV pages cross PCIe.
 * <pre>
 *   projectQkv: h = rmsnorm(x) bf16; q, k, v = h W^T (fp32); q, k = rope(.) bf16; v bf16
 *   attend:     out fp32, lse fp32 = attention(q bf16, K bf16, V bf16), causal by position
 *   finishLayer: x' = x + bf16(att) Wo^T; x' += swiglu(h' Wg^T, h' Wu^T) Wd^T with h' = rmsnorm(x') bf16
 * </pre>
 * One {@link GpuContext} per device, shared; every op holds the context's lock, so the backend is thread-safe.
 */
public final class GpuBackend implements Backend {
    private final ModelConfig config;
    private final GpuContext context;
    private final HandleLedger ledger = new HandleLedger();
    private final List<long[]> weights = new ArrayList<>(); // per layer, indexed by Kind.ordinal()
    private final long tokenEmbedding;
    private final long finalNorm;
    private final long outputHead;
    private final long inverseFrequencies;
    private final int ropeStyle;
    /**
     * The position ids of the pass in progress, on the device: every layer of a pass reads the same array, so it
     * crosses PCIe once per pass instead of three times per layer (a host-to-device copy waits for the stream:
     * each one would stall the queue of kernels behind it).
     */
    private int[] positionsOnDevice;
    private int[] positionsCopy;
    private GpuTensor positionsTensor;
    private final List<Long> allocations = new ArrayList<>();
    private final List<Long> allocationSizes = new ArrayList<>();
    private boolean closed;

    /**
     * @param device the CUDA device index (as the process sees it: after CUDA_VISIBLE_DEVICES)
     * @throws EngineException with one line saying why, when the library or the device is not usable
     */
    public GpuBackend(ModelConfig config, WeightSource source, KvPrecision kvPrecision, int device) {
        if (kvPrecision != KvPrecision.BF16) {
            throw new EngineException("the GPU backend stores KV in BF16 only (asked for " + kvPrecision + ")");
        }
        requireUsable(device);
        this.config = config;
        this.context = GpuContext.of(device);
        synchronized (context) {
            try {
                tokenEmbedding = upload(source, WeightName.of(Kind.TOKEN_EMBEDDING));
                for (int l = 0; l < config.layers(); l++) {
                    long[] layer = new long[Kind.values().length];
                    for (Kind kind : new Kind[] {Kind.ATTENTION_NORM, Kind.WQ, Kind.WK, Kind.WV, Kind.WO,
                            Kind.FFN_NORM, Kind.W_GATE, Kind.W_UP, Kind.W_DOWN}) {
                        layer[kind.ordinal()] = upload(source, WeightName.of(kind, l));
                    }
                    if (config.qkvBias()) {
                        for (Kind kind : new Kind[] {Kind.BQ, Kind.BK, Kind.BV}) {
                            layer[kind.ordinal()] = upload(source, WeightName.of(kind, l));
                        }
                    }
                    weights.add(layer);
                }
                finalNorm = upload(source, WeightName.of(Kind.FINAL_NORM));
                outputHead = config.tiedEmbeddings() ? tokenEmbedding : upload(source, WeightName.of(Kind.OUTPUT_HEAD));
                double[] frequencies = new Rope(config).inverseFrequencies();
                inverseFrequencies = allocate((long) frequencies.length * Double.BYTES);
                NativeGpu.uploadDoubles(context.handle, inverseFrequencies, frequencies, 0, frequencies.length);
                ropeStyle = config.ropeStyle() == RopeStyle.INTERLEAVED ? 0 : 1;
            } catch (RuntimeException e) {
                freeWeights();
                throw e;
            }
        }
    }

    /** Null when a GPU backend can run on {@code device} in this process, else why not (one line). */
    public static String unusableReason(int device) {
        String problem = NativeGpu.load();
        if (problem != null) {
            return problem;
        }
        int count;
        try {
            count = NativeGpu.deviceCount();
        } catch (GpuException e) {
            return "no usable CUDA device: " + e.getMessage();
        }
        if (count == 0) {
            return "no CUDA device is visible to this process";
        }
        return device < 0 || device >= count ? "CUDA device " + device + " does not exist (" + count + " visible)"
                : null;
    }

    private static void requireUsable(int device) {
        String problem = unusableReason(device);
        if (problem != null) {
            throw new EngineException("the GPU backend cannot start: " + problem);
        }
    }

    private long upload(WeightSource source, WeightName name) {
        short[] bits = source.readBf16(name);
        long ptr = allocate((long) bits.length * Short.BYTES);
        NativeGpu.uploadShorts(context.handle, ptr, bits, 0, bits.length);
        return ptr;
    }

    private long allocate(long bytes) {
        long ptr = context.allocate(bytes);
        allocations.add(ptr);
        allocationSizes.add(bytes);
        return ptr;
    }

    private long weight(int layer, Kind kind) {
        return weights.get(layer)[kind.ordinal()];
    }

    @Override
    public String name() {
        return "cuda:" + context.device;
    }

    @Override
    public ModelConfig config() {
        return config;
    }

    @Override
    public KvPrecision kvPrecision() {
        return KvPrecision.BF16;
    }

    @Override
    public Tensor embed(Arena arena, int[] tokens) {
        for (int token : tokens) {
            if (token < 0 || token >= config.vocabSize()) {
                throw new IllegalArgumentException("token id " + token + " is outside the vocabulary of "
                        + config.vocabSize());
            }
        }
        synchronized (context) {
            try (GpuTensor ids = ints(tokens)) {
                GpuTensor x = tensor(arena, DType.F32, tokens.length, config.dim());
                NativeGpu.embedding(context.handle, tokenEmbedding, config.vocabSize(), ids.ptr(), tokens.length,
                        config.dim(), x.ptr());
                return x;
            }
        }
    }

    @Override
    public Tensor upload(Arena arena, float[] values, int... shape) {
        synchronized (context) {
            GpuTensor t = tensor(arena, DType.F32, shape);
            if (t.elements() != values.length) {
                throw new IllegalArgumentException(values.length + " values for shape " + java.util.Arrays.toString(shape));
            }
            NativeGpu.uploadFloats(context.handle, t.ptr(), values, 0, values.length);
            return t;
        }
    }

    @Override
    public float[] download(Tensor tensor) {
        GpuTensor t = own(tensor);
        int n = Math.toIntExact(t.elements());
        synchronized (context) {
            if (t.dtype == DType.BF16) {
                short[] bits = new short[n];
                NativeGpu.downloadShorts(context.handle, t.ptr(), bits, 0, n);
                float[] values = new float[n];
                for (int i = 0; i < n; i++) {
                    values[i] = Bf16.toFloat(bits[i]);
                }
                return values;
            }
            float[] values = new float[n];
            NativeGpu.downloadFloats(context.handle, t.ptr(), values, 0, n);
            return values;
        }
    }

    @Override
    public Tensor rows(Arena arena, Tensor x, int from, int to) {
        GpuTensor source = own(x);
        int width = x.dim(1);
        if (from < 0 || to > x.dim(0) || from >= to) {
            throw new IllegalArgumentException("rows [" + from + ", " + to + ") of " + x);
        }
        synchronized (context) {
            GpuTensor slice = tensor(arena, source.dtype, to - from, width);
            long rowBytes = (long) width * source.dtype.bytes;
            NativeGpu.copy(context.handle, slice.ptr(), source.ptr() + from * rowBytes, (to - from) * rowBytes);
            return slice;
        }
    }

    @Override
    public Qkv projectQkv(Arena arena, int layer, Tensor xTensor, int[] positions) {
        int rows = positions.length;
        Tensor.requireShape(xTensor, "x", rows, config.dim());
        GpuTensor x = f32(xTensor, "x");
        int hd = config.headDim();
        synchronized (context) {
            GpuTensor pos = positions(positions);
            try (GpuTensor normed = scratch(DType.BF16, rows, config.dim())) {
                NativeGpu.rmsnorm(context.handle, x.ptr(), weight(layer, Kind.ATTENTION_NORM),
                        (float) config.rmsNormEps(), rows, config.dim(), normed.ptr());
                GpuTensor q = rotated(arena, normed, pos, layer, Kind.WQ, Kind.BQ, config.heads());
                GpuTensor k = rotated(arena, normed, pos, layer, Kind.WK, Kind.BK, config.kvHeads());
                GpuTensor v = tensor(arena, DType.BF16, rows, config.kvHeads(), hd);
                try (GpuTensor projected = scratch(DType.F32, rows, config.kvWidth())) {
                    gemm(normed, weight(layer, Kind.WV), bias(layer, Kind.BV), rows, config.kvWidth(), config.dim(),
                            0f, projected);
                    NativeGpu.castF32Bf16(context.handle, projected.ptr(), projected.elements(), v.ptr());
                }
                return new Qkv(q, k, v);
            }
        }
    }

    /** bf16(rope(normed W^T + b)): [T, heads, hd]. */
    private GpuTensor rotated(Arena arena, GpuTensor normed, GpuTensor positions, int layer, Kind w, Kind b,
                              int heads) {
        int rows = normed.dim(0);
        int hd = config.headDim();
        GpuTensor out = tensor(arena, DType.BF16, rows, heads, hd);
        try (GpuTensor projected = scratch(DType.F32, rows, heads * hd)) {
            gemm(normed, weight(layer, w), bias(layer, b), rows, heads * hd, config.dim(), 0f, projected);
            NativeGpu.rope(context.handle, projected.ptr(), positions.ptr(), rows, heads, hd, inverseFrequencies,
                    ropeStyle, out.ptr());
        }
        return out;
    }

    private long bias(int layer, Kind kind) {
        return config.qkvBias() ? weight(layer, kind) : 0L;
    }

    @Override
    public KvCache newKvCache(int expectedTokens) {
        return new GpuKvCache(context, ledger, config.layers(), config.kvWidth(), expectedTokens,
                p -> positions(p).ptr());
    }

    /**
     * {@code positions} on the device. The array of the pass in progress is uploaded once and reused while the
     * same array (same object and values: callers never change a positions array once made) comes back.
     */
    private GpuTensor positions(int[] positions) {
        synchronized (context) {
            if (positions != positionsOnDevice || !java.util.Arrays.equals(positions, positionsCopy)) {
                if (positionsTensor != null) {
                    positionsTensor.close();
                }
                positionsTensor = ints(positions);
                positionsOnDevice = positions;
                positionsCopy = positions.clone();
            }
            return positionsTensor;
        }
    }

    @Override
    public Partial attend(Arena arena, Tensor qTensor, int[] queryPositions, KvCache kvCache, int layer) {
        GpuKvCache kv = openCache(kvCache);
        return attention(arena, qTensor, queryPositions, (q, pos, out, lse) -> NativeGpu.attention(context.handle, q,
                pos, queryPositions.length, config.heads(), kv.keys(layer), kv.values(layer),
                kv.devicePositions(layer), kv.length(layer), config.kvHeads(), config.headDim(), out, lse, 0, 0, 0));
    }

    /** One launch over both caches' keys (sf_attention2), no merge pass: Star phase 1 over [anchor; block]. */
    @Override
    public Partial attendBoth(Arena arena, Tensor qTensor, int[] queryPositions, KvCache first, KvCache second,
                              int layer) {
        GpuKvCache a = openCache(first);
        GpuKvCache b = openCache(second);
        return attention(arena, qTensor, queryPositions, (q, pos, out, lse) -> NativeGpu.attention2(context.handle,
                q, pos, queryPositions.length, config.heads(), a.keys(layer), a.values(layer),
                a.devicePositions(layer), a.length(layer), b.keys(layer), b.values(layer), b.devicePositions(layer),
                b.length(layer), config.kvHeads(), config.headDim(), out, lse));
    }

    private static GpuKvCache openCache(KvCache cache) {
        if (!(cache instanceof GpuKvCache kv) || !kv.isOpen()) {
            throw new IllegalArgumentException("not an open KV cache of the GPU backend: " + cache);
        }
        return kv;
    }

    /** The device pointers of one attention call: q (BF16), query positions, out, lse. */
    private interface AttentionLaunch {
        void run(long q, long positions, long out, long lse);
    }

    /** A partial of q's rows: q (BF16, or float32 from the wire, cast here) and its positions on the device. */
    private Partial attention(Arena arena, Tensor qTensor, int[] queryPositions, AttentionLaunch launch) {
        int rows = queryPositions.length;
        int heads = config.heads();
        int hd = config.headDim();
        Tensor.requireShape(qTensor, "q", rows, heads, hd);
        GpuTensor q = own(qTensor);
        synchronized (context) {
            GpuTensor out = tensor(arena, DType.F32, rows, heads, hd);
            GpuTensor lse = tensor(arena, DType.F32, rows, heads);
            GpuTensor pos = positions(queryPositions);
            try (GpuTensor q16 = q.dtype == DType.BF16 ? null : scratch(DType.BF16, rows, heads, hd)) {
                if (q16 != null) { // query rows from the wire arrive as float32
                    NativeGpu.castF32Bf16(context.handle, q.ptr(), q.elements(), q16.ptr());
                }
                launch.run(q16 != null ? q16.ptr() : q.ptr(), pos.ptr(), out.ptr(), lse.ptr());
            }
            return new Partial(out, lse);
        }
    }

    @Override
    public Partial merge(Arena arena, List<Partial> partials) {
        Partial first = partials.get(0);
        int rows = first.lse().dim(0);
        int heads = first.lse().dim(1);
        int hd = first.output().dim(2);
        long[] outs = new long[partials.size()];
        long[] lses = new long[partials.size()];
        for (int i = 0; i < outs.length; i++) {
            Partial p = partials.get(i);
            Tensor.requireShape(p.output(), "partial output", rows, heads, hd);
            Tensor.requireShape(p.lse(), "partial lse", rows, heads);
            outs[i] = f32(p.output(), "partial output").ptr();
            lses[i] = f32(p.lse(), "partial lse").ptr();
        }
        synchronized (context) {
            GpuTensor out = tensor(arena, DType.F32, rows, heads, hd);
            GpuTensor lse = tensor(arena, DType.F32, rows, heads);
            NativeGpu.attentionMerge(context.handle, outs, lses, rows, heads, hd, out.ptr(), lse.ptr());
            return new Partial(out, lse);
        }
    }

    @Override
    public Tensor finishLayer(Arena arena, int layer, Tensor xTensor, Tensor attentionTensor) {
        int rows = xTensor.dim(0);
        int dim = config.dim();
        int hidden = config.hiddenDim();
        Tensor.requireShape(xTensor, "x", rows, dim);
        Tensor.requireShape(attentionTensor, "attention", rows, config.heads(), config.headDim());
        GpuTensor x = f32(xTensor, "x");
        GpuTensor attention = f32(attentionTensor, "attention");
        synchronized (context) {
            GpuTensor next = tensor(arena, DType.F32, rows, dim);
            NativeGpu.copy(context.handle, next.ptr(), x.ptr(), (long) rows * dim * Float.BYTES);
            try (GpuTensor attention16 = scratch(DType.BF16, rows, config.queryWidth());
                 GpuTensor normed = scratch(DType.BF16, rows, dim);
                 GpuTensor gate = scratch(DType.F32, rows, hidden);
                 GpuTensor up = scratch(DType.F32, rows, hidden);
                 GpuTensor activated = scratch(DType.BF16, rows, hidden)) {
                NativeGpu.castF32Bf16(context.handle, attention.ptr(), attention.elements(), attention16.ptr());
                gemm(attention16, weight(layer, Kind.WO), 0L, rows, dim, config.queryWidth(), 1f, next);
                NativeGpu.rmsnorm(context.handle, next.ptr(), weight(layer, Kind.FFN_NORM),
                        (float) config.rmsNormEps(), rows, dim, normed.ptr());
                gemm(normed, weight(layer, Kind.W_GATE), 0L, rows, hidden, dim, 0f, gate);
                gemm(normed, weight(layer, Kind.W_UP), 0L, rows, hidden, dim, 0f, up);
                NativeGpu.swiglu(context.handle, gate.ptr(), up.ptr(), gate.elements(), activated.ptr());
                gemm(activated, weight(layer, Kind.W_DOWN), 0L, rows, dim, hidden, 1f, next);
            }
            return next;
        }
    }

    @Override
    public float[] logits(Tensor xTensor) {
        int rows = xTensor.dim(0);
        Tensor.requireShape(xTensor, "x", rows, config.dim());
        GpuTensor x = f32(xTensor, "x");
        synchronized (context) {
            try (GpuTensor normed = scratch(DType.BF16, rows, config.dim());
                 GpuTensor logits = scratch(DType.F32, rows, config.vocabSize())) {
                NativeGpu.rmsnorm(context.handle, x.ptr(), finalNorm, (float) config.rmsNormEps(), rows, config.dim(),
                        normed.ptr());
                gemm(normed, outputHead, 0L, rows, config.vocabSize(), config.dim(), 0f, logits);
                float[] values = new float[rows * config.vocabSize()];
                NativeGpu.downloadFloats(context.handle, logits.ptr(), values, 0, values.length);
                return values;
            }
        }
    }

    /** c [M, N] (float32) = a [M, K] (bf16) w[N, K]^T (+ bias) + beta * c. */
    private void gemm(GpuTensor a, long w, long bias, int m, int n, int k, float beta, GpuTensor c) {
        NativeGpu.gemm(context.handle, a.ptr(), w, bias, m, n, k, beta, c.ptr());
    }

    @Override
    public long liveHandles() {
        return ledger.open();
    }

    /** Bytes of device memory this process's GPU context holds in tensors and caches (weights included). */
    public long deviceBytesInUse() {
        return context.bytesInUse();
    }

    /** {used, total} bytes of the device as the driver reports them (all processes). */
    public long[] deviceMemory() {
        return context.deviceMemory();
    }

    /** Waits for every op queued so far (for timings). */
    public void synchronize() {
        synchronized (context) {
            NativeGpu.synchronize(context.handle);
        }
    }

    private GpuTensor tensor(Arena arena, DType dtype, int... shape) {
        return arena.own(new GpuTensor(ledger, context, dtype, shape));
    }

    /** A temporary of one op (the caller closes it before returning; stream order makes reuse safe). */
    private GpuTensor scratch(DType dtype, int... shape) {
        return new GpuTensor(ledger, context, dtype, shape);
    }

    private GpuTensor ints(int[] values) {
        GpuTensor t = new GpuTensor(ledger, context, DType.I32, values.length);
        NativeGpu.uploadInts(context.handle, t.ptr(), values, 0, values.length);
        return t;
    }

    private GpuTensor own(Tensor tensor) {
        if (!(tensor instanceof GpuTensor t)) {
            throw new IllegalArgumentException(tensor + " is not a tensor of the GPU backend");
        }
        t.checkUsableBy(ledger);
        return t;
    }

    private GpuTensor f32(Tensor tensor, String what) {
        GpuTensor t = own(tensor);
        if (t.dtype != DType.F32) {
            throw new IllegalArgumentException(what + " must be float32, is " + t.dtype);
        }
        return t;
    }

    private void freeWeights() {
        for (int i = 0; i < allocations.size(); i++) {
            context.release(allocations.get(i), allocationSizes.get(i));
        }
        allocations.clear();
        allocationSizes.clear();
    }

    /** Returns the weights to the context's cache and frees the cache (the context itself lives with the JVM). */
    @Override
    public void close() {
        synchronized (context) {
            if (!closed) {
                closed = true;
                if (positionsTensor != null) {
                    positionsTensor.close();
                }
                freeWeights();
                context.trim();
            }
        }
    }
}
