#!/usr/bin/env bash
# Run here (a machine with a JDK and Maven, no GPU needed) before a device run: builds the jars, exports the CPU
# engine's reference outputs (GpuReferenceExport: DJL, BF16 KV) and packs what the GPU machine needs into
# .work/gpu/: a jlink'd Java 17 (the GPU machine has none), its JNI headers, the jars (no libtorch, no tokenizer
# natives: the GPU side takes token ids), and the reference. About 22 MiB.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
out=.work/gpu
mvn -q -B -DskipTests package -pl gpu-kernels -am dependency:build-classpath \
  -Dmdep.outputFile=target/classpath.txt -Dmdep.includeScope=test >&2
rm -rf "$out" && mkdir -p "$out/lib" "$out/ref"
cp engine/target/starflink-engine-*-SNAPSHOT.jar engine/target/starflink-engine-*-tests.jar "$out/lib/"
cp gpu-kernels/target/starflink-gpu-kernels-*-SNAPSHOT.jar "$out/lib/"
(cd gpu-kernels/target/test-classes && jar cf "$root/$out/lib/gpu-kernels-checks.jar" .)
tr ':' '\n' < gpu-kernels/target/classpath.txt | grep -E '/(jackson-[a-z]+|slf4j-api)-[0-9.]+\.jar$' \
  | xargs -I{} cp {} "$out/lib/"
# the CPU engine's answers: the GPU's greedy tokens must equal them
cp_test="gpu-kernels/target/test-classes:gpu-kernels/target/classes:$(cat gpu-kernels/target/classpath.txt)"
DJL_OFFLINE=true DJL_CACHE_DIR="$root/target/djl-cache" java --enable-native-access=ALL-UNNAMED \
  -Dai.djl.offline=true -cp "$cp_test" org.starflink.gpu.GpuReferenceExport "$out/ref/cpu-reference.json" \
  "${GPU_REFERENCE_INSTANCES:-2}"
jre=$(mktemp -d)
jlink --add-modules java.base,java.logging,jdk.unsupported --strip-debug --no-man-pages --no-header-files \
  --compress=2 --output "$jre/jre"
tar czf "$out/jre.tgz" -C "$jre" jre && rm -rf "$jre"
jdk=$(dirname "$(dirname "$(readlink -f "$(command -v javac)")")")
cp -r "$jdk/include" "$out/include"
du -sh "$out"
