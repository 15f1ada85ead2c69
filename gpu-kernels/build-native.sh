#!/usr/bin/env bash
# Builds what this machine can of the native side: the CUDA library and its checks (build.sh; needs nvcc, and
# cuBLAS for the GEMM) and the JNI shim build/libstarflink_gpu_jni.so (needs gcc and JAVA_HOME's JNI headers,
# or STARFLINK_JNI_INCLUDE). Says in one line what it skipped; fails only on a compile error.
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v "${NVCC:-nvcc}" >/dev/null 2>&1 && [ ! -x "${CUDA_HOME:-/usr/local/cuda}/bin/nvcc" ]; then
  echo "build-native.sh: no nvcc on this machine: CUDA library and JNI shim skipped (the Java GPU backend then reports itself unusable)"
  exit 0
fi
[ "${STARFLINK_KERNELS_BUILT:-0}" = 1 ] || bash build.sh   # bin/gpu-check has built them already
include=${STARFLINK_JNI_INCLUDE:-${JAVA_HOME:?set JAVA_HOME or STARFLINK_JNI_INCLUDE}/include}
if [ ! -f "$include/jni.h" ]; then
  echo "build-native.sh: no jni.h under $include: JNI shim skipped"
  exit 0
fi
${CC:-gcc} -std=c11 -O2 -fPIC -shared -Wall -Werror -Iinclude -I"$include" -I"$include/linux" \
  src/jni/starflink_gpu_jni.c -o build/libstarflink_gpu_jni.so -Lbuild -lstarflink_gpu -Wl,-rpath,'$ORIGIN'
echo "build-native.sh: built build/libstarflink_gpu_jni.so"
