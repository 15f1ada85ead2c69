#!/usr/bin/env bash
# On the GPU machine, from the repository root, after gpu-kernels/prepare-device-run.sh here (carry .work/gpu):
# builds the native library and the JNI shim, runs the Java GPU checks and the whole-model benchmark next to
# transformers (STARFLINK_GPU_BENCH=0: checks only). Logs go to ${RESULTS:-gpu-kernels/build/results}. Exits
# non-zero if a check failed.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
results=${RESULTS:-gpu-kernels/build/results}
mkdir -p "$results"
if [ -n "${STARFLINK_GPU_CLASSPATH:-}" ]; then # a machine with a JDK: the jars of a local build
  java=${STARFLINK_JAVA:-java}
  cp=$STARFLINK_GPU_CLASSPATH
  bash gpu-kernels/build-native.sh > "$results/build-native.log" 2>&1 || { tail -20 "$results/build-native.log"; exit 1; }
else                                           # the packed runtime of prepare-device-run.sh
  mkdir -p /tmp/starflink-jre
  tar xzf .work/gpu/jre.tgz -C /tmp/starflink-jre
  java=/tmp/starflink-jre/jre/bin/java
  cp=$(ls .work/gpu/lib/*.jar | tr '\n' ':')
  STARFLINK_JNI_INCLUDE=$root/.work/gpu/include bash gpu-kernels/build-native.sh > "$results/build-native.log" \
    2>&1 || { tail -20 "$results/build-native.log"; exit 1; }
fi
run_java() { "$java" -Xmx24g -Dstarflink.gpu.library=gpu-kernels/build/libstarflink_gpu_jni.so -cp "$cp" "$@"; }
status=0
reference=.work/gpu/ref/cpu-reference.json
[ -f "$reference" ] || { echo "no $reference: the CPU-engine comparisons are skipped"; reference=; }
run_java org.starflink.gpu.GpuCheck $reference 2>&1 | tee "$results/gpu-check.txt"
[ "${PIPESTATUS[0]}" = 0 ] || status=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$results/machine.txt"
[ "${STARFLINK_GPU_BENCH:-1}" = 0 ] && exit $status
python3 gpu-kernels/bench/hf_prefill.py "${MAX_CONTEXT:-65536}" 2>&1 | grep -v Warning | tee "$results/hf-prefill.txt"
run_java org.starflink.gpu.GpuBench "${MAX_CONTEXT:-65536}" 2>&1 | tee "$results/gpu-bench.txt"
exit $status
