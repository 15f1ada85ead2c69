/*
 * starflink_gpu_jni.c -- the JNI shim between org.starflink.gpu.NativeGpu and the C ABI of libstarflink_gpu.so.
 * One Java method per C function; device pointers and the context travel as jlong. A non-zero status becomes
 * an org.starflink.gpu.GpuException carrying sf_last_error(). Host arrays are pinned with
 * Get/ReleasePrimitiveArrayCritical only for the copy itself.
 */
#include <jni.h>
#include <stdint.h>
#include <stdlib.h>
#include "starflink_gpu.h"

#define CTX(c) ((sf_context*) (intptr_t) (c))
#define PTR(p) ((void*) (intptr_t) (p))

static int fail(JNIEnv* env, int status) {
    if (status == SF_OK) {
        return 0;
    }
    jclass type = (*env)->FindClass(env, "org/starflink/gpu/GpuException");
    if (type != NULL) {
        (*env)->ThrowNew(env, type, sf_last_error());
    }
    return 1;
}

JNIEXPORT jint JNICALL Java_org_starflink_gpu_NativeGpu_deviceCount(JNIEnv* env, jclass c) {
    int count = 0;
    fail(env, sf_device_count(&count));
    return count;
}

JNIEXPORT jlong JNICALL Java_org_starflink_gpu_NativeGpu_contextCreate(JNIEnv* env, jclass c, jint device) {
    sf_context* ctx = NULL;
    if (fail(env, sf_context_create(device, &ctx))) {
        return 0;
    }
    return (jlong) (intptr_t) ctx;
}

JNIEXPORT void JNICALL Java_org_starflink_gpu_NativeGpu_contextDestroy(JNIEnv* env, jclass c, jlong ctx) {
    fail(env, sf_context_destroy(CTX(ctx)));
}

JNIEXPORT void JNICALL Java_org_starflink_gpu_NativeGpu_synchronize(JNIEnv* env, jclass c, jlong ctx) {
    fail(env, sf_synchronize(CTX(ctx)));
}

JNIEXPORT jlong JNICALL Java_org_starflink_gpu_NativeGpu_malloc(JNIEnv* env, jclass c, jlong ctx, jlong bytes) {
    void* ptr = NULL;
    if (fail(env, sf_malloc(CTX(ctx), &ptr, (size_t) bytes))) {
        return 0;
    }
    return (jlong) (intptr_t) ptr;
}

JNIEXPORT void JNICALL Java_org_starflink_gpu_NativeGpu_free(JNIEnv* env, jclass c, jlong ctx, jlong ptr) {
    fail(env, sf_free(CTX(ctx), PTR(ptr)));
}

JNIEXPORT jlongArray JNICALL Java_org_starflink_gpu_NativeGpu_deviceMemory(JNIEnv* env, jclass c, jlong ctx) {
    size_t used = 0, total = 0;
    if (fail(env, sf_device_memory(CTX(ctx), &used, &total))) {
        return NULL;
    }
    jlongArray result = (*env)->NewLongArray(env, 2);
    jlong values[2] = {(jlong) used, (jlong) total};
    (*env)->SetLongArrayRegion(env, result, 0, 2, values);
    return result;
}

/* Host array <-> device copies: elementBytes per element, offset and count in elements of the Java array. */
static void upload(JNIEnv* env, jlong ctx, jlong dst, jarray src, jint offset, jint count, int elementBytes) {
    char* host = (*env)->GetPrimitiveArrayCritical(env, src, NULL);
    if (host == NULL) {
        return;
    }
    int status = sf_upload(CTX(ctx), PTR(dst), host + (size_t) offset * elementBytes, (size_t) count * elementBytes);
    (*env)->ReleasePrimitiveArrayCritical(env, src, host, JNI_ABORT);
    fail(env, status);
}

static void download(JNIEnv* env, jlong ctx, jlong src, jarray dst, jint offset, jint count, int elementBytes) {
    char* host = (*env)->GetPrimitiveArrayCritical(env, dst, NULL);
    if (host == NULL) {
        return;
    }
    int status = sf_download(CTX(ctx), host + (size_t) offset * elementBytes, PTR(src),
                             (size_t) count * elementBytes);
    (*env)->ReleasePrimitiveArrayCritical(env, dst, host, 0);
    fail(env, status);
}

JNIEXPORT void JNICALL Java_org_starflink_gpu_NativeGpu_uploadFloats(JNIEnv* env, jclass c, jlong ctx, jlong dst,
        jfloatArray src, jint offset, jint count) {
    upload(env, ctx, dst, src, offset, count, 4);
}

JNIEXPORT void JNICALL Java_org_starflink_gpu_NativeGpu_uploadShorts(JNIEnv* env, jclass c, jlong ctx, jlong dst,
        jshortArray src, jint offset, jint count) {
    upload(env, ctx, dst, src, offset, count, 2);
}

JNIEXPORT void JNICALL Java_org_starflink_gpu_NativeGpu_uploadInts(JNIEnv* env, jclass c, jlong ctx, jlong dst,
        jintArray src, jint offset, jint count) {
    upload(env, ctx, dst, src, offset, count, 4);
}

JNIEXPORT void JNICALL Java_org_starflink_gpu_NativeGpu_uploadDoubles(JNIEnv* env, jclass c, jlong ctx, jlong dst,
        jdoubleArray src, jint offset, jint count) {
    upload(env, ctx, dst, src, offset, count, 8);
}

JNIEXPORT void JNICALL Java_org_starflink_gpu_NativeGpu_uploadBytes(JNIEnv* env, jclass c, jlong ctx, jlong dst,
        jbyteArray src, jint offset, jint count) {
    upload(env, ctx, dst, src, offset, count, 1);
}

JNIEXPORT void JNICALL Java_org_starflink_gpu_NativeGpu_downloadFloats(JNIEnv* env, jclass c, jlong ctx, jlong src,
        jfloatArray dst, jint offset, jint count) {
    download(env, ctx, src, dst, offset, count, 4);
}

JNIEXPORT void JNICALL Java_org_starflink_gpu_NativeGpu_downloadShorts(JNIEnv* env, jclass c, jlong ctx, jlong src,
        jshortArray dst, jint offset, jint count) {
    download(env, ctx, src, dst, offset, count, 2);
}

JNIEXPORT void JNICALL Java_org_starflink_gpu_NativeGpu_downloadInts(JNIEnv* env, jclass c, jlong ctx, jlong src,
        jintArray dst, jint offset, jint count) {
    download(env, ctx, src, dst, offset, count, 4);
}

JNIEXPORT void JNICALL Java_org_starflink_gpu_NativeGpu_downloadBytes(JNIEnv* env, jclass c, jlong ctx, jlong src,
        jbyteArray dst, jint offset, jint count) {
    download(env, ctx, src, dst, offset, count, 1);
}

JNIEXPORT void JNICALL Java_org_starflink_gpu_NativeGpu_copy(JNIEnv* env, jclass c, jlong ctx, jlong dst, jlong src,
        jlong bytes) {
    fail(env, sf_copy(CTX(ctx), PTR(dst), PTR(src), (size_t) bytes));
}

JNIEXPORT void JNICALL Java_org_starflink_gpu_NativeGpu_embedding(JNIEnv* env, jclass c, jlong ctx, jlong table,
        jint vocab, jlong tokens, jint rows, jint dim, jlong out) {
    fail(env, sf_embedding(CTX(ctx), PTR(table), vocab, PTR(tokens), rows, dim, PTR(out)));
}

JNIEXPORT void JNICALL Java_org_starflink_gpu_NativeGpu_rmsnorm(JNIEnv* env, jclass c, jlong ctx, jlong x, jlong w,
        jfloat eps, jint rows, jint dim, jlong out) {
    fail(env, sf_rmsnorm(CTX(ctx), PTR(x), PTR(w), eps, rows, dim, PTR(out)));
}

JNIEXPORT void JNICALL Java_org_starflink_gpu_NativeGpu_rope(JNIEnv* env, jclass c, jlong ctx, jlong x, jlong pos,
        jint rows, jint heads, jint hd, jlong invFreq, jint style, jlong out) {
    fail(env, sf_rope(CTX(ctx), PTR(x), PTR(pos), rows, heads, hd, PTR(invFreq), style, PTR(out)));
}

JNIEXPORT void JNICALL Java_org_starflink_gpu_NativeGpu_castF32Bf16(JNIEnv* env, jclass c, jlong ctx, jlong x,
        jlong n, jlong out) {
    fail(env, sf_cast_f32_bf16(CTX(ctx), PTR(x), (size_t) n, PTR(out)));
}

JNIEXPORT void JNICALL Java_org_starflink_gpu_NativeGpu_swiglu(JNIEnv* env, jclass c, jlong ctx, jlong gate,
        jlong up, jlong n, jlong out) {
    fail(env, sf_swiglu(CTX(ctx), PTR(gate), PTR(up), (size_t) n, PTR(out)));
}

JNIEXPORT void JNICALL Java_org_starflink_gpu_NativeGpu_add(JNIEnv* env, jclass c, jlong ctx, jlong x, jlong y,
        jlong n) {
    fail(env, sf_add(CTX(ctx), PTR(x), PTR(y), (size_t) n));
}

JNIEXPORT void JNICALL Java_org_starflink_gpu_NativeGpu_gemm(JNIEnv* env, jclass c, jlong ctx, jlong a, jlong w,
        jlong bias, jint m, jint n, jint k, jfloat beta, jlong out) {
    fail(env, sf_gemm(CTX(ctx), PTR(a), PTR(w), PTR(bias), m, n, k, beta, PTR(out)));
}

JNIEXPORT void JNICALL Java_org_starflink_gpu_NativeGpu_attention(JNIEnv* env, jclass c, jlong ctx, jlong q,
        jlong qpos, jint rows, jint heads, jlong k, jlong v, jlong kpos, jint keys, jint kvHeads, jint hd,
        jlong out, jlong lse, jint algo, jint splits, jint blockM) {
    sf_attention_opts opts = {algo, splits, blockM};
    fail(env, sf_attention(CTX(ctx), PTR(q), PTR(qpos), rows, heads, PTR(k), PTR(v), PTR(kpos), keys, kvHeads, hd,
                           PTR(out), PTR(lse), &opts));
}

JNIEXPORT void JNICALL Java_org_starflink_gpu_NativeGpu_attention2(JNIEnv* env, jclass c, jlong ctx, jlong q,
        jlong qpos, jint rows, jint heads, jlong k1, jlong v1, jlong kpos1, jint keys1, jlong k2, jlong v2,
        jlong kpos2, jint keys2, jint kvHeads, jint hd, jlong out, jlong lse) {
    fail(env, sf_attention2(CTX(ctx), PTR(q), PTR(qpos), rows, heads, PTR(k1), PTR(v1), PTR(kpos1), keys1, PTR(k2),
                            PTR(v2), PTR(kpos2), keys2, kvHeads, hd, PTR(out), PTR(lse), NULL));
}

JNIEXPORT void JNICALL Java_org_starflink_gpu_NativeGpu_attentionMerge(JNIEnv* env, jclass c, jlong ctx,
        jlongArray outs, jlongArray lses, jint rows, jint heads, jint hd, jlong out, jlong lse) {
    jsize n = (*env)->GetArrayLength(env, outs);
    const float** outPtrs = malloc(sizeof(float*) * (size_t) n);
    const float** lsePtrs = malloc(sizeof(float*) * (size_t) n);
    jlong* o = (*env)->GetLongArrayElements(env, outs, NULL);
    jlong* l = (*env)->GetLongArrayElements(env, lses, NULL);
    for (jsize i = 0; i < n; i++) {
        outPtrs[i] = (const float*) (intptr_t) o[i];
        lsePtrs[i] = (const float*) (intptr_t) l[i];
    }
    (*env)->ReleaseLongArrayElements(env, outs, o, JNI_ABORT);
    (*env)->ReleaseLongArrayElements(env, lses, l, JNI_ABORT);
    int status = sf_attention_merge(CTX(ctx), n, outPtrs, lsePtrs, rows, heads, hd, PTR(out), PTR(lse));
    free(outPtrs);
    free(lsePtrs);
    fail(env, status);
}

JNIEXPORT void JNICALL Java_org_starflink_gpu_NativeGpu_argmax(JNIEnv* env, jclass c, jlong ctx, jlong logits,
        jint rows, jint vocab, jlong out) {
    fail(env, sf_argmax(CTX(ctx), PTR(logits), rows, vocab, PTR(out)));
}

JNIEXPORT void JNICALL Java_org_starflink_gpu_NativeGpu_sampleTopP(JNIEnv* env, jclass c, jlong ctx, jlong logits,
        jint vocab, jdouble temperature, jdouble topP, jdouble r, jlong out) {
    fail(env, sf_sample_top_p(CTX(ctx), PTR(logits), vocab, temperature, topP, r, PTR(out)));
}
