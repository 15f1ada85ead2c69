package org.starflink.gpu;

import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * One CUDA context per device per JVM, shared by every backend on that device (all operators of a
 * TaskManager): the native context (a stream, a cuBLAS handle, scratch) and a caching allocator over it.
 *
 * <p>Every op runs on the context's one stream, so a buffer returned to the cache can be handed out again at once:
 * whatever reads it next is ordered after whatever used it before (PyTorch's caching allocator relies on the
 * same). Allocation sizes are rounded up to a power of two below 64 MiB and to 2 MiB above, so that
 * steady-state passes reuse their buffers and device memory stays flat. Callers synchronize on the context
 * around each op: the native context is used by one thread at a time.
 */
final class GpuContext {
    private static final long SMALL_LIMIT = 64L << 20;
    private static final long LARGE_ROUNDING = 2L << 20;
    private static final Map<Integer, GpuContext> CONTEXTS = new ConcurrentHashMap<>();

    final long handle;
    final int device;
    private final Map<Long, ArrayDeque<Long>> cached = new HashMap<>();
    private long bytesInUse;
    private long bytesCached;

    private GpuContext(int device) {
        this.device = device;
        this.handle = NativeGpu.contextCreate(device);
    }

    /** The JVM's context of {@code device}, created on first use. The native library must be loaded. */
    static GpuContext of(int device) {
        return CONTEXTS.computeIfAbsent(device, GpuContext::new);
    }

    /** Device memory of at least {@code bytes}; its size class is {@link #sizeClass}. */
    synchronized long allocate(long bytes) {
        long size = sizeClass(bytes);
        ArrayDeque<Long> free = cached.get(size);
        long ptr;
        if (free != null && !free.isEmpty()) {
            ptr = free.pop();
            bytesCached -= size;
        } else {
            try {
                ptr = NativeGpu.malloc(handle, size);
            } catch (GpuException e) { // out of memory: give the cache back and try once more
                trim();
                ptr = NativeGpu.malloc(handle, size);
            }
        }
        bytesInUse += size;
        return ptr;
    }

    /** Returns memory from {@link #allocate}(bytes) to the cache. */
    synchronized void release(long ptr, long bytes) {
        long size = sizeClass(bytes);
        cached.computeIfAbsent(size, k -> new ArrayDeque<>()).push(ptr);
        bytesInUse -= size;
        bytesCached += size;
    }

    /** Frees every cached buffer (after waiting for the stream, so that nothing still reads them). */
    synchronized void trim() {
        NativeGpu.synchronize(handle);
        for (ArrayDeque<Long> free : cached.values()) {
            for (long ptr : free) {
                NativeGpu.free(handle, ptr);
            }
        }
        cached.clear();
        bytesCached = 0;
    }

    synchronized long bytesInUse() {
        return bytesInUse;
    }

    synchronized long bytesCached() {
        return bytesCached;
    }

    /** {used, total} bytes of the device as the driver reports them. */
    synchronized long[] deviceMemory() {
        return NativeGpu.deviceMemory(handle);
    }

    static long sizeClass(long bytes) {
        long size = Math.max(bytes, 256);
        if (size <= SMALL_LIMIT) {
            return Long.highestOneBit(size - 1) << 1;
        }
        return (size + LARGE_ROUNDING - 1) / LARGE_ROUNDING * LARGE_ROUNDING;
    }
}
