package org.starflink.gpu;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The JNI view of libstarflink_gpu.so's C ABI (gpu-kernels/include/starflink_gpu.h): one static method per C
 * function, device pointers and the context as longs, errors as {@link GpuException}. Ops are asynchronous on
 * the context's stream; uploads and downloads wait. Callers hold the context's lock ({@link GpuContext}).
 *
 * <p>The shim (libstarflink_gpu_jni.so, linked to libstarflink_gpu.so next to it) is found at
 * {@code -Dstarflink.gpu.library}, else {@code $STARFLINK_GPU_LIBRARY}, else gpu-kernels/build/ under the
 * working directory; {@link #load} says in one line what it tried when none loads.
 */
final class NativeGpu {
    private static final String LIBRARY = "libstarflink_gpu_jni.so";
    private static volatile String loadProblem = "not loaded yet";

    private NativeGpu() {
    }

    /** Loads the shim once; returns null when it loaded, else why not (one line). */
    static synchronized String load() {
        if (loadProblem == null) {
            return null;
        }
        String configured = System.getProperty("starflink.gpu.library", System.getenv("STARFLINK_GPU_LIBRARY"));
        Path library = configured != null ? Path.of(configured) : Path.of("gpu-kernels", "build", LIBRARY);
        if (!Files.isRegularFile(library)) {
            loadProblem = "no GPU library at " + library.toAbsolutePath()
                    + " (build it with gpu-kernels/build.sh on a machine with the CUDA toolkit, or set "
                    + "-Dstarflink.gpu.library)";
            return loadProblem;
        }
        try {
            System.load(library.toAbsolutePath().toString());
            loadProblem = null;
        } catch (UnsatisfiedLinkError e) {
            loadProblem = "cannot load " + library.toAbsolutePath() + ": " + e.getMessage();
        }
        return loadProblem;
    }

    static native int deviceCount();

    static native long contextCreate(int device);

    static native void contextDestroy(long ctx);

    static native void synchronize(long ctx);

    static native long malloc(long ctx, long bytes);

    static native void free(long ctx, long ptr);

    /** {used, total} bytes of the context's device. */
    static native long[] deviceMemory(long ctx);

    static native void uploadFloats(long ctx, long dst, float[] src, int offset, int count);

    static native void uploadShorts(long ctx, long dst, short[] src, int offset, int count);

    static native void uploadInts(long ctx, long dst, int[] src, int offset, int count);

    static native void uploadDoubles(long ctx, long dst, double[] src, int offset, int count);

    static native void uploadBytes(long ctx, long dst, byte[] src, int offset, int count);

    static native void downloadFloats(long ctx, long src, float[] dst, int offset, int count);

    static native void downloadShorts(long ctx, long src, short[] dst, int offset, int count);

    static native void downloadInts(long ctx, long src, int[] dst, int offset, int count);

    static native void downloadBytes(long ctx, long src, byte[] dst, int offset, int count);

    static native void copy(long ctx, long dst, long src, long bytes);

    static native void embedding(long ctx, long table, int vocab, long tokens, int rows, int dim, long out);

    static native void rmsnorm(long ctx, long x, long w, float eps, int rows, int dim, long out);

    static native void rope(long ctx, long x, long positions, int rows, int heads, int headDim, long inverseFrequencies,
                            int style, long out);

    static native void castF32Bf16(long ctx, long x, long n, long out);

    static native void swiglu(long ctx, long gate, long up, long n, long out);

    static native void add(long ctx, long x, long y, long n);

    static native void gemm(long ctx, long a, long w, long bias, int m, int n, int k, float beta, long out);

    static native void attention(long ctx, long q, long queryPositions, int rows, int heads, long k, long v,
                                 long keyPositions, int keys, int kvHeads, int headDim, long out, long lse, int algo,
                                 int splits, int blockM);

    /** sf_attention2: over two key sets at once (Star phase 1's anchor and block), as one set. */
    static native void attention2(long ctx, long q, long queryPositions, int rows, int heads, long k1, long v1,
                                  long keyPositions1, int keys1, long k2, long v2, long keyPositions2, int keys2,
                                  int kvHeads, int headDim, long out, long lse);

    static native void attentionMerge(long ctx, long[] outs, long[] lses, int rows, int heads, int headDim, long out,
                                      long lse);

    static native void argmax(long ctx, long logits, int rows, int vocab, long out);

    static native void sampleTopP(long ctx, long logits, int vocab, double temperature, double topP, double r,
                                  long out);
}
