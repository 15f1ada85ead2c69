#!/usr/bin/env bash
# Puts on HDFS what deploy/yarn/submit.sh starts Starflink from (once per Flink or Starflink version):
#
#   $STARFLINK_HDFS/flink-2.2.1/lib/        Flink 2.2.1's lib/ + DJL and libtorch (pipeline/target/flink-lib/)
#   $STARFLINK_HDFS/flink-2.2.1/plugins/    Flink's plugins/ (external-resource-gpu among them)
#   $STARFLINK_HDFS/usrlib/starflink-job.jar the job jar (pipeline/target/starflink-job.jar)
#   $STARFLINK_HDFS/models/starflink-synth-14m.tgz   the model folder as an archive (any model: same layout)
#   $STARFLINK_HDFS/gpu/starflink-gpu.tgz   libstarflink_gpu.so + libstarflink_gpu_jni.so (GPU only)
#   $STARFLINK_HDFS/secrets/kafka-client.properties, truststore.p12   Kafka client secrets, mode 0600 (yours)
#   $STARFLINK_HDFS/checkpoints, savepoints, ha   written by the job
#
#   FLINK_HOME=/opt/flink-2.2.1 deploy/yarn/hdfs-layout.sh   (from the repository root, after mvn package)
# Not run here (no HDFS on the development machines).
set -euo pipefail
hdfs=${STARFLINK_HDFS:-hdfs:///starflink}
flink=${FLINK_HOME:?set FLINK_HOME to a Flink 2.2.1 distribution}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
hdfs dfs -mkdir -p "$hdfs/flink-2.2.1" "$hdfs/usrlib" "$hdfs/models" "$hdfs/gpu" "$hdfs/secrets"
cp -r "$flink/lib" "$tmp/lib" && cp pipeline/target/flink-lib/*.jar "$tmp/lib/"
hdfs dfs -put -f "$tmp/lib" "$flink/plugins" "$hdfs/flink-2.2.1/"
hdfs dfs -put -f pipeline/target/starflink-job.jar "$hdfs/usrlib/"
tar -czf "$tmp/starflink-synth-14m.tgz" -C models starflink-synth-14m
hdfs dfs -put -f "$tmp/starflink-synth-14m.tgz" "$hdfs/models/"
if [ -f gpu-kernels/build/libstarflink_gpu_jni.so ]; then
  tar -czf "$tmp/starflink-gpu.tgz" -C gpu-kernels/build libstarflink_gpu.so libstarflink_gpu_jni.so
  hdfs dfs -put -f "$tmp/starflink-gpu.tgz" "$hdfs/gpu/"
fi
hdfs dfs -chmod 700 "$hdfs/secrets"
echo "hdfs-layout.sh: done; put kafka-client.properties (sasl.jaas.config=..., ssl.truststore.password=...) and"
echo "truststore.p12 into $hdfs/secrets/ yourself (hdfs dfs -put -f FILE $hdfs/secrets/)"
