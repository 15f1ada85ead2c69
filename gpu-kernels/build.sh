#!/usr/bin/env bash
# Builds build/libstarflink_gpu.so (CUDA kernels + C ABI, static CUDA runtime) and the check programs.
# Needs nvcc (CUDA 12.4+; built and measured with 13.0). cuBLAS is linked when its header is found under
# $CUDA_HOME (default /usr/local/cuda); without it sf_gemm returns SF_ERR_UNSUPPORTED and check_gemm is skipped.
set -euo pipefail
cd "$(dirname "$0")"
CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
NVCC=${NVCC:-$(command -v nvcc || echo "$CUDA_HOME/bin/nvcc")}
CXX=${CXX:-g++}
mkdir -p build/obj
ARCH="-gencode=arch=compute_90a,code=sm_90a -gencode=arch=compute_90,code=sm_90"
FLAGS="-std=c++17 -O3 -Xcompiler -fPIC -lineinfo --threads 0 $ARCH"
LIBS=""
if [ -f "$CUDA_HOME/include/cublas_v2.h" ]; then
  FLAGS="$FLAGS -DSF_HAVE_CUBLAS -I$CUDA_HOME/include"
  LIBS="-L$CUDA_HOME/lib64 -lcublas -lcublasLt -Xlinker -rpath -Xlinker $CUDA_HOME/lib64"
  HAVE_CUBLAS=1
else
  echo "build.sh: cuBLAS not found under $CUDA_HOME: building without GEMM (sf_gemm unsupported), skipping check_gemm"
  HAVE_CUBLAS=0
fi
pids=()
for f in context elementwise attention sampling gemm; do
  "$NVCC" $FLAGS -Xptxas -v -c "src/$f.cu" -o "build/obj/$f.o" 2> "build/obj/$f.ptxas.txt" &
  pids+=($!)
done
fail=0
for p in "${pids[@]}"; do wait "$p" || fail=1; done
if [ $fail -ne 0 ]; then cat build/obj/*.ptxas.txt | grep -v "^ptxas info" >&2; echo "build.sh: compile failed" >&2; exit 1; fi
"$NVCC" -shared -cudart static $ARCH build/obj/*.o -o build/libstarflink_gpu.so $LIBS
# register / spill report of the attention kernels (the compiler's resource report)
{ grep -E "Compiling entry|registers|spill|C75" build/obj/attention.ptxas.txt | grep -B0 -A0 -E "attn_|registers|spill|C75" || true
  if command -v cuobjdump > /dev/null; then
    echo "SASS matrix instructions in attention.o (HGMMA = Hopper wgmma, HMMA = mma.sync):"
    cuobjdump --dump-sass build/obj/attention.o | grep -oE "HGMMA\.[A-Z0-9x.]*|HMMA\.[A-Z0-9.]*" | sort | uniq -c || true
  fi; } > build/attention-resources.txt
CHECKS="check_attention check_elementwise check_sampling"
[ $HAVE_CUBLAS = 1 ] && CHECKS="$CHECKS check_gemm"
pids=()
for c in $CHECKS; do
  "$CXX" -std=c++17 -O2 -fopenmp "checks/$c.cpp" -o "build/$c" -Lbuild -lstarflink_gpu -Wl,-rpath,'$ORIGIN' &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fail=1; done
if [ $fail -ne 0 ]; then echo "build.sh: building the checks failed" >&2; exit 1; fi
echo "build.sh: built build/libstarflink_gpu.so and $CHECKS"
