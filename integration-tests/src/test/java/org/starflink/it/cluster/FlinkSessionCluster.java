package org.starflink.it.cluster;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.runtime.clusterframework.TaskExecutorProcessSpec;
import org.apache.flink.runtime.clusterframework.TaskExecutorProcessUtils;
import org.apache.flink.runtime.jobmanager.JobManagerProcessSpec;
import org.apache.flink.runtime.jobmanager.JobManagerProcessUtils;
import org.apache.flink.runtime.util.config.memory.ProcessMemoryUtils;

/**
 * A Flink session cluster of separate processes, as {@code bin/start-cluster.sh} starts one from a Flink
 * distribution: one JobManager ({@code StandaloneSessionClusterEntrypoint}) and TaskManagers
 * ({@code TaskManagerRunner}), all reading one generated configuration directory ({@code config.yaml}). The
 * "distribution" is the Flink runtime of the test classpath ({@code target/flink-cluster-classpath.txt}: Flink,
 * RocksDB, the Web UI's jar submission, log4j) plus DJL from {@code pipeline/target/flink-lib/}, as in a cluster's
 * {@code lib/}; the job itself comes only from the job jar submitted through {@link #rest()}. JVM memory flags
 * are derived from the configuration the way the distribution's scripts derive them (BashJavaUtils).
 *
 * <p>Every listener on 127.0.0.1; RocksDB with incremental checkpoints to the filesystem under the cluster's
 * directory; memory sized for a 2-core machine shared with other work.
 */
public final class FlinkSessionCluster implements AutoCloseable {
    public final Path dir;
    public final Path checkpoints;
    public final Path savepoints;
    private final Path conf;
    private final Map<String, String> config = new LinkedHashMap<>();
    private final List<Path> classpath;
    private ManagedProcess jobManager;
    private final List<ManagedProcess> taskManagers = new ArrayList<>();
    private int taskManagersStarted;
    private final FlinkRest rest;

    /**
     * @param overrides configuration set on top of the defaults below (e.g. the checkpoint interval)
     */
    public FlinkSessionCluster(Path dir, int slotsPerTaskManager, Map<String, String> overrides) {
        this.dir = dir.toAbsolutePath();
        this.conf = this.dir.resolve("conf");
        this.checkpoints = this.dir.resolve("checkpoints");
        this.savepoints = this.dir.resolve("savepoints");
        int restPort = KafkaBrokerProcess.freePort();
        config.put("jobmanager.rpc.address", "127.0.0.1");
        config.put("jobmanager.rpc.port", Integer.toString(KafkaBrokerProcess.freePort()));
        config.put("jobmanager.bind-host", "127.0.0.1");
        config.put("rest.address", "127.0.0.1");
        config.put("rest.bind-address", "127.0.0.1");
        config.put("rest.port", Integer.toString(restPort));
        config.put("taskmanager.host", "127.0.0.1");
        config.put("taskmanager.bind-host", "127.0.0.1");
        config.put("taskmanager.numberOfTaskSlots", Integer.toString(slotsPerTaskManager));
        config.put("parallelism.default", "2");
        // memory for a 2-core machine with 24 GiB shared with other work: a 1 GiB JobManager, TaskManagers of
        // 1.6 GiB with room outside the heap for libtorch (task off-heap) and RocksDB (managed)
        config.put("jobmanager.memory.process.size", "1024m");
        config.put("taskmanager.memory.process.size", "1664m");
        config.put("taskmanager.memory.managed.fraction", "0.2");
        config.put("taskmanager.memory.task.off-heap.size", "256m");
        config.put("taskmanager.memory.jvm-metaspace.size", "192m");
        // the job's production settings (ClusterSettings): RocksDB, incremental filesystem checkpoints
        config.put("state.backend.type", "rocksdb");
        config.put("state.backend.rocksdb.localdir", this.dir.resolve("rocksdb").toString());
        config.put("execution.checkpointing.storage", "filesystem");
        config.put("execution.checkpointing.dir", checkpoints.toUri().toString());
        config.put("execution.checkpointing.savepoint-dir", savepoints.toUri().toString());
        config.put("execution.checkpointing.incremental", "true");
        config.put("execution.checkpointing.interval", "500 ms");
        config.put("execution.checkpointing.externalized-checkpoint-retention", "RETAIN_ON_CANCELLATION");
        // A standalone ResourceManager cannot start workers: until a replacement TaskManager registers, each
        // restart fails at once with NoResourceAvailableException and takes one attempt (a loaded 2-core machine
        // saw 5 such attempts after one kill), hence many attempts 1 s apart.
        config.put("restart-strategy.type", "fixed-delay");
        config.put("restart-strategy.fixed-delay.attempts", "60");
        config.put("restart-strategy.fixed-delay.delay", "1 s");
        // a TaskManager killed with -9 is noticed in seconds: RPC heartbeats to it fail at once
        config.put("heartbeat.interval", "1000");
        config.put("heartbeat.timeout", "15000");
        config.put("metrics.fetcher.update-interval", "500");
        config.put("web.refresh-interval", "500"); // the REST API caches job details this long
        config.put("io.tmp.dirs", this.dir.resolve("tmp").toString());
        config.put("web.upload.dir", this.dir.resolve("uploads").toString());
        config.put("web.tmpdir", this.dir.resolve("web").toString());
        config.put("blob.storage.directory", this.dir.resolve("blobs").toString());
        config.putAll(overrides);
        this.classpath = clusterClasspath();
        this.rest = new FlinkRest("http://127.0.0.1:" + restPort);
    }

    /** What a Flink distribution's lib/ would hold: Flink's runtime + DJL (the job jar brings everything else). */
    private static List<Path> clusterClasspath() {
        Path project = Path.of(System.getProperty("starflink.project.dir", "..")).toAbsolutePath();
        Path file = project.resolve("integration-tests/target/flink-cluster-classpath.txt");
        Path flinkLib = project.resolve("pipeline/target/flink-lib");
        List<Path> entries = new ArrayList<>();
        try {
            for (String entry : Files.readString(file).strip().split(":")) {
                entries.add(Path.of(entry));
            }
        } catch (IOException e) {
            throw new IllegalStateException("no " + file + ": build the integration-tests module with Maven first", e);
        }
        try (Stream<Path> jars = Files.list(flinkLib)) {
            List<Path> djl = jars.filter(p -> p.toString().endsWith(".jar")).sorted().toList();
            if (djl.isEmpty()) {
                throw new IllegalStateException(flinkLib + " holds no jars: build the pipeline module first");
            }
            entries.addAll(djl);
        } catch (IOException e) {
            throw new IllegalStateException("no " + flinkLib + ": build the pipeline module first "
                    + "(mvn -pl pipeline -am package)", e);
        }
        return entries;
    }

    public FlinkRest rest() {
        return rest;
    }

    /** Starts the JobManager and {@code taskManagers} TaskManagers; returns once they are all registered. */
    public FlinkSessionCluster start(int taskManagers) {
        long t0 = System.nanoTime();
        writeConfiguration();
        Configuration flinkConfig = Configuration.fromMap(config);
        JobManagerProcessSpec jmSpec = JobManagerProcessUtils.processSpecFromConfig(flinkConfig);
        List<String> jvm = new ArrayList<>(split(JobManagerProcessUtils.generateJvmParametersStr(jmSpec,
                flinkConfig)));
        jvm.addAll(logOptions("jobmanager"));
        jobManager = ManagedProcess.start("jobmanager", classpath,
                "org.apache.flink.runtime.entrypoint.StandaloneSessionClusterEntrypoint", jvm,
                List.of("--configDir", conf.toString()), environment(), dir.resolve("log/jobmanager.out"));
        for (int i = 0; i < taskManagers; i++) {
            startTaskManager();
        }
        awaitTaskManagers(taskManagers, Duration.ofMinutes(3));
        System.out.printf("flink session cluster at %s: jobmanager pid %d, %d taskmanagers, ready in %d ms%n",
                rest.url(), jobManager.pid(), taskManagers, (System.nanoTime() - t0) / 1_000_000);
        return this;
    }

    /** Starts one more TaskManager (tm-1, tm-2, ...: a new resource id each time). Does not wait. */
    public synchronized ManagedProcess startTaskManager() {
        String id = "tm-" + (++taskManagersStarted);
        Configuration flinkConfig = Configuration.fromMap(config);
        TaskExecutorProcessSpec spec = TaskExecutorProcessUtils.processSpecFromConfig(flinkConfig);
        List<String> jvm = new ArrayList<>(split(ProcessMemoryUtils.generateJvmParametersStr(spec)));
        jvm.addAll(logOptions(id));
        List<String> args = new ArrayList<>(List.of("--configDir", conf.toString()));
        // what taskmanager.sh passes: the fully derived memory sizes, as dynamic properties
        args.addAll(split(TaskExecutorProcessUtils.generateDynamicConfigsStr(spec)));
        args.addAll(List.of("-D", "taskmanager.resource-id=" + id));
        ManagedProcess tm = ManagedProcess.start(id, classpath,
                "org.apache.flink.runtime.taskexecutor.TaskManagerRunner", jvm, args, environment(),
                dir.resolve("log/" + id + ".out"));
        taskManagers.add(tm);
        return tm;
    }

    /** kill -9 of the {@code index}-th live TaskManager (in start order); returns it. */
    public synchronized ManagedProcess killTaskManager(int index) {
        ManagedProcess tm = taskManagers.remove(index);
        tm.kill();
        System.out.printf("killed %s with SIGKILL%n", tm);
        return tm;
    }

    public synchronized List<ManagedProcess> taskManagers() {
        return List.copyOf(taskManagers);
    }

    public ManagedProcess jobManager() {
        return jobManager;
    }

    /** Until the JobManager's REST API lists {@code count} TaskManagers. */
    public void awaitTaskManagers(int count, Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (true) {
            jobManager.assertAlive();
            for (ManagedProcess tm : taskManagers()) {
                tm.assertAlive();
            }
            try {
                if (rest.overview().path("taskmanagers").asInt() == count) {
                    return;
                }
            } catch (IllegalStateException notYet) {
                // REST endpoint not up yet
            }
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException(count + " TaskManagers not registered after " + timeout
                        + "; the end of the JobManager's log:\n" + logTail("jobmanager", 30));
            }
            KafkaBrokerProcess.sleep(250);
        }
    }

    /** The last lines of a process's Flink log (log/NAME.log). */
    public String logTail(String name, int lines) {
        Path log = dir.resolve("log/" + name + ".log");
        try {
            List<String> all = Files.readAllLines(log);
            return String.join("\n", all.subList(Math.max(0, all.size() - lines), all.size()));
        } catch (IOException e) {
            return "(no " + log + ")";
        }
    }

    private List<String> logOptions(String name) {
        Path log4j = conf.resolve("log4j.properties");
        return List.of("-Dlog.file=" + dir.resolve("log/" + name + ".log"),
                "-Dlog4j.configurationFile=" + log4j.toUri(), "-Dlog4j2.configurationFile=" + log4j.toUri());
    }

    private Map<String, String> environment() {
        // the rest of the environment is inherited: DJL_CACHE_DIR, OMP_NUM_THREADS (unset: libtorch on one thread) as in the test JVM (same numerics)
        return Map.of("FLINK_CONF_DIR", conf.toString(), "DJL_OFFLINE", "true");
    }

    private void writeConfiguration() {
        try {
            Files.createDirectories(conf);
            Files.createDirectories(dir.resolve("log"));
            StringBuilder yaml = new StringBuilder("# written by FlinkSessionCluster\n");
            config.forEach((key, value) -> yaml.append(key).append(": '").append(value.replace("'", "''"))
                    .append("'\n"));
            Files.writeString(conf.resolve("config.yaml"), yaml);
            Files.writeString(conf.resolve("log4j.properties"), String.join("\n",
                    "monitorInterval = 0",
                    "rootLogger.level = INFO",
                    "rootLogger.appenderRef.file.ref = MainAppender",
                    "appender.main.name = MainAppender",
                    "appender.main.type = File",
                    "appender.main.append = true",
                    "appender.main.fileName = ${sys:log.file}",
                    "appender.main.layout.type = PatternLayout",
                    "appender.main.layout.pattern = %d{HH:mm:ss,SSS} %-5p %-40c{1.} %m%n",
                    "logger.metricgroups.name = org.apache.flink.runtime.metrics.groups",
                    "logger.metricgroups.level = ERROR",
                    "logger.metricgroup.name = org.apache.flink.metrics.MetricGroup",
                    "logger.metricgroup.level = ERROR",
                    "logger.kafka.name = org.apache.kafka",
                    "logger.kafka.level = WARN", ""));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write the cluster's configuration under " + conf, e);
        }
    }

    private static List<String> split(String flags) {
        return Arrays.stream(flags.trim().split("\\s+")).filter(s -> !s.isEmpty()).toList();
    }

    @Override
    public synchronized void close() {
        for (ManagedProcess tm : taskManagers) {
            tm.kill();
        }
        taskManagers.clear();
        if (jobManager != null) {
            jobManager.kill();
        }
    }
}
