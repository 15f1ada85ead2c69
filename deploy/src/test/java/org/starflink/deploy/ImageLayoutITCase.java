package org.starflink.deploy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.stream.Stream;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.CoreOptions;
import org.apache.flink.container.entrypoint.StandaloneApplicationClusterEntryPoint;
import org.apache.flink.runtime.clusterframework.TaskExecutorProcessSpec;
import org.apache.flink.runtime.clusterframework.TaskExecutorProcessUtils;
import org.apache.flink.runtime.taskexecutor.TaskManagerRunner;
import org.apache.flink.runtime.util.config.memory.ProcessMemoryUtils;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.starflink.kafka.EmbeddedKafka;
import org.starflink.operators.cluster.LoopbackCluster;
import org.starflink.pipeline.client.StarflinkClient;
import org.starflink.schemas.AnswerToken;
import org.starflink.schemas.Question;

/**
 * The CPU image's content laid out as a directory from deploy/docker/Dockerfile's COPY lines (the job jar in
 * usrlib/, the model, config.yaml in conf/; lib/ is what the base image brings: Flink's jars, here from Maven, plus
 * pipeline/target/flink-lib/ when issue 12 has made it), and a cluster started from it with the command lines
 * the Flink image's entry point runs for application mode: {@code standalone-job --job-classname
 * org.starflink.pipeline.StarflinkJob} (StandaloneApplicationClusterEntryPoint --configDir conf) and
 * {@code taskmanager} (TaskManagerRunner --configDir conf), as two processes with config.yaml's JVM flags, FLINK_HOME
 * / FLINK_LIB_DIR as the image's scripts set them, and -D only for what differs here (loopback addresses, ports,
 * the model's and checkpoints' paths, the broker, a smaller TaskManager). A document goes in through Kafka and a
 * question is answered. Not the image itself: no Docker here, and Flink's launch scripts (flink-dist) are not on
 * Maven Central, so the JVMs are started directly with the same main classes and arguments.
 */
class ImageLayoutITCase {
    private static final Path ROOT = DeployFiles.deployDir().resolve("target/image");
    private static final Path FLINK_HOME = ROOT.resolve("opt/flink");
    private static final Path RUN = DeployFiles.deployDir().resolve("target/image-run");

    static EmbeddedKafka kafka;
    static final List<Process> processes = new ArrayList<>();

    @BeforeAll
    static void layOutAndStart() throws Exception {
        Path jobJar = DeployFiles.projectDir().resolve("pipeline/target/starflink-job.jar");
        assertTrue(Files.exists(jobJar), jobJar + " is missing: this test runs in `mvn verify` after pipeline's package");
        deleteRecursively(ROOT);
        deleteRecursively(RUN);
        Files.createDirectories(RUN);
        layOut();
        kafka = EmbeddedKafka.builder().dataDir(RUN.resolve("kafka")).topic("documents", 2).topic("questions", 2)
                .topic("answers", 2).topic("rejected", 1).topic("block-events", 1).start();
        int rpcPort = freePort();
        List<String> dynamic = new ArrayList<>();
        Configuration overrides = LoopbackCluster.apply(new Configuration());
        overrides.setString("jobmanager.rpc.port", String.valueOf(rpcPort));
        overrides.setString("rest.bind-port", "0");
        overrides.setString("taskmanager.memory.process.size", "3g");
        overrides.setString("taskmanager.memory.task.off-heap.size", "512m");
        overrides.setString("jobmanager.memory.process.size", "1g");
        overrides.setString("execution.checkpointing.dir", RUN.resolve("checkpoints").toUri().toString());
        overrides.setString("execution.checkpointing.savepoint-dir", RUN.resolve("savepoints").toUri().toString());
        overrides.setString("starflink.model", ROOT.resolve("opt/starflink/models/starflink-synth-14m").toString());
        overrides.setString("starflink.kafka.bootstrap-servers", kafka.bootstrapServers());
        overrides.toMap().forEach((k, v) -> dynamic.add("-D" + k + "=" + v));

        List<String> jm = new ArrayList<>(List.of("--configDir", FLINK_HOME.resolve("conf").toString(),
                "--job-classname", "org.starflink.pipeline.StarflinkJob"));
        jm.addAll(dynamic);
        processes.add(start("jobmanager", StandaloneApplicationClusterEntryPoint.class.getName(), List.of("-Xmx1g"), jm));
        // taskmanager.sh: BashJavaUtils derives the memory and CPU settings from the configuration and passes them
        // as JVM flags and -D; the same calls here
        Configuration tmConf = FlinkConfigurationTest.configYaml();
        tmConf.addAll(overrides);
        TaskExecutorProcessSpec spec = TaskExecutorProcessUtils.processSpecFromConfig(tmConf);
        List<String> tmJvm = Arrays.asList(ProcessMemoryUtils.generateJvmParametersStr(spec).trim().split("\\s+"));
        List<String> tm = new ArrayList<>(List.of("--configDir", FLINK_HOME.resolve("conf").toString()));
        tm.addAll(dynamic);
        tm.addAll(Arrays.asList(TaskExecutorProcessUtils.generateDynamicConfigsStr(spec).trim().split("\\s+")));
        processes.add(start("taskmanager", TaskManagerRunner.class.getName(), tmJvm, tm));
    }

    @AfterAll
    static void stop() throws Exception {
        for (Process process : processes) {
            process.destroy();
        }
        for (Process process : processes) {
            if (!process.waitFor(20, java.util.concurrent.TimeUnit.SECONDS)) {
                process.destroyForcibly();
            }
        }
        if (kafka != null) {
            kafka.close();
        }
    }

    @Test
    void aJobStartedFromTheImageLayoutAnswersAQuestionAboutADocument() throws Exception {
        Thread.sleep(5_000);
        for (Process process : processes) {
            assertTrue(process.isAlive(), "a cluster process ended at start: see " + RUN);
        }
        String docId = "image-" + UUID.randomUUID();
        String text = "The deposit of the contract is paid by the tenant. The keys are handed over on Monday. ";
        try (StarflinkClient client = new StarflinkClient(kafka.bootstrapServers(),
                StarflinkClient.TopicNames.defaults())) {
            client.sendDocument(docId, 1, text.repeat(4), 200, chunk -> { });
            List<String> tokens = new ArrayList<>();
            AnswerToken last = client.ask(Question.newBuilder().setQuestionId(UUID.randomUUID().toString())
                    .setDocId(docId).setText("Who pays the deposit?").setMaxNewTokens(8)
                    .setWaitCompleteMs(Duration.ofMinutes(3).toMillis()).build(),
                    token -> tokens.add(token.getText()), Duration.ofMinutes(4));
            assertNull(last.getError(), "the answer's error");
            assertTrue(last.getFinal$());
            assertTrue(last.getCoverage().getBlocks() >= 1, "covered blocks");
            assertEquals(tokens.size(), last.getIndex() + 1);
            for (Process process : processes) {
                assertTrue(process.isAlive(), "a cluster process died: see " + RUN);
            }
        }
    }

    /** The Dockerfile's COPY lines under ROOT, and the base image's lib/. */
    private static void layOut() throws IOException {
        for (DockerfilesTest.Copy copy : DockerfilesTest.copies("Dockerfile")) {
            for (String source : copy.sources()) {
                Path from = DeployFiles.projectDir().resolve(source);
                Path to = ROOT.resolve(copy.destination().substring(1));
                if (Files.isDirectory(from) || (!Files.exists(from) && source.endsWith("/"))) {
                    if (Files.isDirectory(from)) {
                        copyTree(from, to);
                    } // flink-lib/ before issue 12: DJL is still inside the job jar
                } else if (copy.destination().endsWith("/")) {
                    Files.createDirectories(to);
                    Files.copy(from, to.resolve(from.getFileName()), StandardCopyOption.REPLACE_EXISTING);
                } else {
                    Files.createDirectories(to.getParent());
                    Files.copy(from, to, StandardCopyOption.REPLACE_EXISTING);
                }
            }
        }
        // FROM flink:2.2.1-java17: Flink's own jars in lib/. Without flink-dist on Maven Central: this test's
        // classpath less what the base image does not have (the project's modules, the job's own dependencies,
        // which the job jar carries, and the test tools)
        Path lib = Files.createDirectories(FLINK_HOME.resolve("lib"));
        List<String> notInTheBaseImage = List.of("/target/", "/org/starflink/", "/org/junit/", "/org/opentest4j/",
                "/org/apiguardian/", "/com/networknt/", "/com/ethlo/", "/org/apache/kafka/", "/org/apache/avro/",
                "/ai/djl/", "/flink-connector-kafka/", "/flink-avro/", "/info/picocli/", "/flink-yarn/",
                "/org/scala-lang/", "/com/fasterxml/jackson/", "/org/yaml/", "/com/typesafe/", "/junit/junit/",
                "/org/hamcrest/", "/flink-test-utils", "/org/assertj/", "/org/mockito/", "/net/bytebuddy/");
        List<String> jars = new ArrayList<>();
        for (String entry : System.getProperty("java.class.path").split(File.pathSeparator)) {
            if (entry.endsWith(".jar") && notInTheBaseImage.stream().noneMatch(entry::contains)) {
                jars.add(entry);
            }
        }
        for (String jar : jars) {
            Path from = Path.of(jar);
            Files.copy(from, lib.resolve(from.getFileName()), StandardCopyOption.REPLACE_EXISTING);
        }
        Files.createDirectories(FLINK_HOME.resolve("plugins"));
        // the base image's console logging (conf/log4j-console.properties, which its scripts pass to the JVMs)
        Files.writeString(FLINK_HOME.resolve("conf/log4j-console.properties"), String.join("\n",
                "rootLogger.level = INFO", "rootLogger.appenderRef.console.ref = ConsoleAppender",
                "appender.console.name = ConsoleAppender", "appender.console.type = CONSOLE",
                "appender.console.layout.type = PatternLayout",
                "appender.console.layout.pattern = %d{HH:mm:ss,SSS} %-5p %-30c{1} %m%n",
                "logger.kafka.name = org.apache.kafka", "logger.kafka.level = WARN",
                "logger.metrics.name = org.apache.flink.runtime.metrics.groups", "logger.metrics.level = ERROR", ""));
    }

    private static Process start(String name, String mainClass, List<String> jvm, List<String> args)
            throws IOException {
        Configuration conf = FlinkConfigurationTest.configYaml();
        List<String> command = new ArrayList<>();
        command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        command.addAll(jvm);
        command.add("-Dlog4j.configurationFile=file:" + FLINK_HOME.resolve("conf/log4j-console.properties"));
        command.addAll(Arrays.asList(conf.get(CoreOptions.FLINK_JVM_OPTIONS).trim().split("\\s+")));
        command.add("-cp");
        command.add(FLINK_HOME.resolve("lib") + File.separator + "*");
        command.add(mainClass);
        command.addAll(args);
        ProcessBuilder builder = new ProcessBuilder(command).directory(RUN.toFile())
                .redirectErrorStream(true).redirectOutput(RUN.resolve(name + ".log").toFile());
        Map<String, String> env = builder.environment();
        env.put("FLINK_HOME", FLINK_HOME.toString());
        env.put("FLINK_LIB_DIR", FLINK_HOME.resolve("lib").toString());
        env.put("FLINK_CONF_DIR", FLINK_HOME.resolve("conf").toString());
        env.put("FLINK_PLUGINS_DIR", FLINK_HOME.resolve("plugins").toString());
        env.put("DJL_OFFLINE", "true");
        env.put("DJL_CACHE_DIR", DeployFiles.projectDir().resolve("target/djl-cache").toString()); // the build's
        return builder.start();
    }

    private static int freePort() throws IOException {
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return socket.getLocalPort();
        }
    }

    private static void copyTree(Path from, Path to) throws IOException {
        try (Stream<Path> files = Files.walk(from)) {
            for (Path file : (Iterable<Path>) files::iterator) {
                Path target = to.resolve(from.relativize(file).toString());
                if (Files.isDirectory(file)) {
                    Files.createDirectories(target);
                } else {
                    Files.copy(file, target, StandardCopyOption.REPLACE_EXISTING);
                }
            }
        }
    }

    private static void deleteRecursively(Path dir) throws IOException {
        if (!Files.exists(dir)) {
            return;
        }
        try (Stream<Path> files = Files.walk(dir)) {
            files.sorted(java.util.Comparator.reverseOrder()).forEach(p -> {
                try {
                    Files.delete(p);
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            });
        }
    }
}
