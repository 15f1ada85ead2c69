#!/usr/bin/env bash
# Starts Starflink on YARN in application mode: the JobManager runs StarflinkJob.main inside the YARN cluster,
# Flink's jars come from HDFS (yarn.provided.lib.dirs, uploaded once by deploy/yarn/hdfs-layout.sh), nothing is
# uploaded per submission but this client's config.
#
#   deploy/yarn/submit.sh cpu|gpu [more flink run options, e.g. -s hdfs:///starflink/savepoints/savepoint-x]
#
# Needs: FLINK_HOME, a Flink 2.2.1 distribution with `export HADOOP_CLASSPATH=$(hadoop classpath)`; the HDFS
# layout of hdfs-layout.sh under $STARFLINK_HDFS (default hdfs:///starflink); KAFKA_BOOTSTRAP_SERVERS. The client's
# configuration is deploy/conf/config.yaml (FLINK_CONF_DIR), every setting the job needs; the -D below are what
# YARN changes. STARFLINK_DRY_RUN=1 prints the flink command line, one argument per line, instead of running it
# (YarnSubmitCommandTest parses exactly that with Flink 2.2.1's CliFrontend).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
backend=${1:?usage: submit.sh cpu|gpu [flink run options]}
shift
case "$backend" in cpu|gpu) ;; *) echo "submit.sh: backend must be cpu or gpu, not '$backend'" >&2; exit 2;; esac
hdfs=${STARFLINK_HDFS:-hdfs:///starflink}
bootstrap=${KAFKA_BOOTSTRAP_SERVERS:?set KAFKA_BOOTSTRAP_SERVERS to the brokers, e.g. broker-0:9093}
export FLINK_CONF_DIR=${FLINK_CONF_DIR:-$here/../conf}
archives="$hdfs/models/starflink-synth-14m.tgz"
[ "$backend" = gpu ] && archives="$archives;$hdfs/gpu/starflink-gpu.tgz"

args=(run --target yarn-application --detached
  -Dyarn.application.name="starflink-$backend"
  # Flink's lib/ (with DJL and libtorch added) and plugins/ from HDFS: YARN caches them on the nodes
  -Dyarn.provided.lib.dirs="$hdfs/flink-2.2.1/lib;$hdfs/flink-2.2.1/plugins"
  # the model, and the Kafka client secrets (HDFS permissions 0600), unpacked/copied into every container's
  # working directory: the paths below are relative to it
  -Dyarn.ship-archives="$archives"
  -Dyarn.ship-files="$hdfs/secrets/kafka-client.properties;$hdfs/secrets/truststore.p12"
  -Dstarflink.model=starflink-synth-14m.tgz/starflink-synth-14m
  # state on HDFS; HA through ZooKeeper so that a restarted ApplicationMaster resumes from the latest checkpoint
  -Dexecution.checkpointing.dir="$hdfs/checkpoints"
  -Dexecution.checkpointing.savepoint-dir="$hdfs/savepoints"
  -Dhigh-availability.type=zookeeper
  -Dhigh-availability.storageDir="$hdfs/ha"
  -Dyarn.application-attempts=10
  -Djobmanager.memory.process.size=2g
  # Kafka security from the shipped properties file, resolved inside the clients by Kafka's FileConfigProvider
  -Dstarflink.kafka.properties.config.providers=file
  -Dstarflink.kafka.properties.config.providers.file.class=org.apache.kafka.common.config.provider.FileConfigProvider
  -Dstarflink.kafka.properties.security.protocol=SASL_SSL
  -Dstarflink.kafka.properties.sasl.mechanism=SCRAM-SHA-512
  -Dstarflink.kafka.properties.sasl.jaas.config='${file:kafka-client.properties:sasl.jaas.config}'
  -Dstarflink.kafka.properties.ssl.truststore.location=truststore.p12
  -Dstarflink.kafka.properties.ssl.truststore.type=PKCS12
  -Dstarflink.kafka.properties.ssl.truststore.password='${file:kafka-client.properties:ssl.truststore.password}'
)
if [ "$backend" = gpu ]; then
  args+=(
    # one GPU per TaskManager container (YARN's GPU scheduling: yarn.io/gpu), its index handed to the job
    -Dexternal-resources=gpu
    -Dexternal-resource.gpu.amount=1
    -Dexternal-resource.gpu.driver-factory.class=org.apache.flink.externalresource.gpu.GPUDriverFactory
    -Dexternal-resource.gpu.yarn.config-key=yarn.io/gpu
    -Dstarflink.backend=gpu
    # the CUDA kernels (gpu-kernels/build-native.sh), shipped as the starflink-gpu.tgz archive above; cuBLAS 13
    # must be on the GPU nodes (/usr/local/cuda/lib64, the library's rpath)
    -Dcontainerized.taskmanager.env.STARFLINK_GPU_LIBRARY=starflink-gpu.tgz/libstarflink_gpu_jni.so
    -Dtaskmanager.numberOfTaskSlots=4
    -Dtaskmanager.memory.process.size=32g
    -Dtaskmanager.memory.task.off-heap.size=2g
  )
else
  args+=(-Dstarflink.backend=cpu -Dtaskmanager.numberOfTaskSlots=2 -Dtaskmanager.memory.process.size=8g)
fi
args+=("$@"
  --class org.starflink.pipeline.StarflinkJob
  "$hdfs/usrlib/starflink-job.jar"
  --starflink.kafka.bootstrap-servers "$bootstrap")

if [ "${STARFLINK_DRY_RUN:-0}" = 1 ]; then
  printf '%s\n' "${args[@]}"
  exit 0
fi
exec "${FLINK_HOME:?set FLINK_HOME to a Flink 2.2.1 distribution}/bin/flink" "${args[@]}"
