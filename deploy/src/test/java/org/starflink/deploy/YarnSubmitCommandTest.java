package org.starflink.deploy;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.lang.reflect.Field;
import java.lang.reflect.Modifier;
import java.lang.reflect.Proxy;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.apache.flink.client.cli.CliFrontend;
import org.apache.flink.client.deployment.ClusterClientFactory;
import org.apache.flink.client.deployment.ClusterClientServiceLoader;
import org.apache.flink.client.deployment.ClusterDescriptor;
import org.apache.flink.client.deployment.ClusterSpecification;
import org.apache.flink.client.deployment.application.ApplicationConfiguration;
import org.apache.flink.client.program.ClusterClient;
import org.apache.flink.client.program.ClusterClientProvider;
import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.DeploymentOptions;
import org.apache.flink.configuration.GlobalConfiguration;
import org.apache.flink.configuration.PipelineOptions;
import org.apache.flink.yarn.configuration.YarnConfigOptions;
import org.junit.jupiter.api.Test;
import org.starflink.pipeline.StarflinkJob;
import org.starflink.pipeline.StarflinkOptions;

/**
 * deploy/yarn/submit.sh's command line, run through Flink 2.2.1's own {@link CliFrontend} ({@code flink run}) with
 * deploy/conf as its configuration directory, up to the point where it hands the application to YARN: that
 * deployer (flink-yarn 2.2.1 is not on Maven Central, and there is no YARN here) is replaced by one that keeps what
 * it was given. What the CLI would have deployed is then checked like every other deployment's configuration; the
 * yarn.* keys against flink-yarn 2.2.0's YarnConfigOptions (the newest on Central). Nothing here reaches YARN.
 */
class YarnSubmitCommandTest {

    /** What the CLI handed to the (replaced) YARN application deployer. */
    static final class Submitted {
        Configuration configuration;
        ApplicationConfiguration application;
    }

    @Test
    void theCpuCommandDeploysAnApplicationWithEverySettingTheJobNeeds() throws Exception {
        Submitted submitted = submit(submitScript("cpu"));
        Configuration conf = submitted.configuration;
        assertEquals("yarn-application", conf.get(DeploymentOptions.TARGET));
        assertEquals(List.of("hdfs:///starflink/usrlib/starflink-job.jar"), conf.get(PipelineOptions.JARS));
        assertEquals(StarflinkJob.class.getName(), submitted.application.getApplicationClassName());
        assertArrayEquals(new String[] {"--starflink.kafka.bootstrap-servers", "broker-0:9093"},
                submitted.application.getProgramArguments());
        assertEquals(List.of(), DeploymentSettings.problems(conf, submitted.application.getProgramArguments()));
        assertEquals(List.of(), yarnProblems(conf));
        assertEquals(List.of(), FlinkOptionKeys.unknown(conf.keySet()));
        assertEquals("hdfs:///starflink/checkpoints", conf.getString("execution.checkpointing.dir", ""));
        assertEquals(List.of("hdfs:///starflink/flink-2.2.1/lib", "hdfs:///starflink/flink-2.2.1/plugins"),
                conf.get(YarnConfigOptions.PROVIDED_LIB_DIRS));
        Configuration options = StarflinkJob.jobOptions(conf, submitted.application.getProgramArguments());
        assertEquals("cpu", options.get(StarflinkOptions.BACKEND));
        assertEquals("broker-0:9093", options.get(StarflinkOptions.BOOTSTRAP_SERVERS));
        Map<String, String> kafka = StarflinkJob.kafkaClientProperties(options).asMap();
        assertEquals("SASL_SSL", kafka.get("security.protocol"));
        assertEquals("${file:kafka-client.properties:sasl.jaas.config}", kafka.get("sasl.jaas.config"));
    }

    @Test
    void theGpuCommandAsksYarnForOneGpuPerTaskManager() throws Exception {
        Submitted submitted = submit(submitScript("gpu"));
        Configuration conf = submitted.configuration;
        assertEquals(List.of(), DeploymentSettings.problems(conf, submitted.application.getProgramArguments()));
        assertEquals(List.of(), yarnProblems(conf));
        assertEquals(List.of(), FlinkOptionKeys.unknown(conf.keySet()));
        assertEquals("gpu", conf.getString("external-resources", ""));
        assertEquals("1", conf.getString("external-resource.gpu.amount", ""));
        assertEquals("yarn.io/gpu", conf.getString("external-resource.gpu.yarn.config-key", ""));
        assertEquals("gpu", conf.get(StarflinkOptions.BACKEND));
        assertEquals(List.of("hdfs:///starflink/models/starflink-synth-14m.tgz", "hdfs:///starflink/gpu/starflink-gpu.tgz"),
                conf.get(YarnConfigOptions.SHIP_ARCHIVES));
    }

    @Test
    void theParserIsRealAMisspeltOptionIsRefusedAndNothingDeployed() throws Exception {
        List<String> args = new ArrayList<>(submitScript("cpu"));
        args.set(args.indexOf("--target"), "--targt");
        Submitted submitted = new Submitted();
        assertEquals(1, cli(submitted).parseAndRun(args.toArray(new String[0])));
        assertNull(submitted.configuration);
    }

    @Test
    void aMisspeltYarnKeyIsCaught() throws Exception {
        Configuration conf = submit(submitScript("cpu")).configuration;
        conf.setString("yarn.ship-file", "x");
        assertEquals(List.of("yarn.ship-file is no YarnConfigOptions option of flink-yarn 2.2.0"), yarnProblems(conf));
    }

    @Test
    void theScriptRefusesAnUnknownBackendAndAMissingBroker() throws Exception {
        assertEquals(2, runScript(Map.of("KAFKA_BOOTSTRAP_SERVERS", "b:1"), "tpu").exitCode);
        Result noBroker = runScript(Map.of(), "cpu");
        assertEquals(1, noBroker.exitCode);
        assertTrue(noBroker.stderr.contains("set KAFKA_BOOTSTRAP_SERVERS"), noBroker.stderr);
    }

    private static Submitted submit(List<String> args) {
        Submitted submitted = new Submitted();
        int exit = cli(submitted).parseAndRun(args.toArray(new String[0]));
        assertEquals(0, exit, "flink " + String.join(" ", args));
        return submitted;
    }

    /** Flink's CLI as bin/flink builds it, with deploy/conf as FLINK_CONF_DIR and the YARN deployer replaced. */
    private static CliFrontend cli(Submitted submitted) {
        String confDir = DeployFiles.conf().toString();
        Configuration configuration = GlobalConfiguration.loadConfiguration(confDir);
        return new CliFrontend(configuration, new CapturingYarn(submitted),
                CliFrontend.loadCustomCommandLines(configuration, confDir));
    }

    /** Every yarn.* key is one of flink-yarn's options, and its value parses. */
    static List<String> yarnProblems(Configuration conf) throws IllegalAccessException {
        Set<String> known = new TreeSet<>();
        List<String> problems = new ArrayList<>();
        for (Field field : YarnConfigOptions.class.getFields()) {
            if (Modifier.isStatic(field.getModifiers()) && ConfigOption.class.isAssignableFrom(field.getType())) {
                ConfigOption<?> option = (ConfigOption<?>) field.get(null);
                known.add(option.key());
                try {
                    conf.getOptional(option);
                } catch (IllegalArgumentException e) {
                    problems.add(option.key() + " does not parse: " + e.getMessage());
                }
            }
        }
        for (String key : conf.keySet()) {
            if (key.startsWith("yarn.") && !known.contains(key)) {
                problems.add(key + " is no YarnConfigOptions option of flink-yarn 2.2.0");
            }
        }
        return problems;
    }

    /** The arguments deploy/yarn/submit.sh passes to bin/flink (its dry run). */
    private static List<String> submitScript(String backend) throws Exception {
        Result result = runScript(Map.of("KAFKA_BOOTSTRAP_SERVERS", "broker-0:9093"), backend);
        assertEquals(0, result.exitCode, result.stderr);
        return List.of(result.stdout.split("\n"));
    }

    record Result(int exitCode, String stdout, String stderr) {
    }

    private static Result runScript(Map<String, String> env, String... args) throws IOException, InterruptedException {
        List<String> command = new ArrayList<>(List.of("bash",
                DeployFiles.deployDir().resolve("yarn/submit.sh").toString()));
        command.addAll(List.of(args));
        ProcessBuilder builder = new ProcessBuilder(command);
        builder.environment().remove("KAFKA_BOOTSTRAP_SERVERS");
        builder.environment().remove("STARFLINK_HDFS");
        builder.environment().remove("FLINK_CONF_DIR");
        builder.environment().put("STARFLINK_DRY_RUN", "1");
        builder.environment().putAll(env);
        Process process = builder.start();
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        Thread errReader = new Thread(() -> {
            try {
                process.getErrorStream().transferTo(err);
            } catch (IOException ignored) {
                // the process ended
            }
        });
        errReader.start();
        process.getInputStream().transferTo(out);
        assertTrue(process.waitFor(30, TimeUnit.SECONDS), "submit.sh did not finish");
        errReader.join();
        return new Result(process.exitValue(), out.toString(StandardCharsets.UTF_8),
                err.toString(StandardCharsets.UTF_8));
    }

    /** Stands in for flink-yarn's YarnClusterClientFactory: keeps what the CLI would deploy. */
    private record CapturingYarn(Submitted submitted) implements ClusterClientServiceLoader {
        @Override
        @SuppressWarnings("unchecked")
        public <T> ClusterClientFactory<T> getClusterClientFactory(Configuration configuration) {
            if (!"yarn-application".equals(configuration.get(DeploymentOptions.TARGET))) {
                throw new IllegalStateException("not a YARN application target: "
                        + configuration.get(DeploymentOptions.TARGET));
            }
            return (ClusterClientFactory<T>) new ClusterClientFactory<String>() {
                @Override
                public boolean isCompatibleWith(Configuration conf) {
                    return true;
                }

                @Override
                public ClusterDescriptor<String> createClusterDescriptor(Configuration conf) {
                    return descriptor(conf);
                }

                @Override
                public String getClusterId(Configuration conf) {
                    return null;
                }

                @Override
                public ClusterSpecification getClusterSpecification(Configuration conf) {
                    return new ClusterSpecification.ClusterSpecificationBuilder().createClusterSpecification();
                }
            };
        }

        @Override
        public Stream<String> getApplicationModeTargetNames() {
            return Stream.of("yarn-application");
        }

        private ClusterDescriptor<String> descriptor(Configuration conf) {
            return new ClusterDescriptor<>() {
                @Override
                public String getClusterDescription() {
                    return "captured";
                }

                @Override
                public ClusterClientProvider<String> retrieve(String id) {
                    throw new UnsupportedOperationException();
                }

                @Override
                public ClusterClientProvider<String> deploySessionCluster(ClusterSpecification spec) {
                    throw new UnsupportedOperationException("a session cluster: submit.sh asks for an application");
                }

                @Override
                public ClusterClientProvider<String> deployApplicationCluster(ClusterSpecification spec,
                        ApplicationConfiguration application) {
                    submitted.configuration = new Configuration(conf);
                    submitted.application = application;
                    @SuppressWarnings("unchecked")
                    ClusterClient<String> client = (ClusterClient<String>) Proxy.newProxyInstance(
                            ClusterClient.class.getClassLoader(), new Class<?>[] {ClusterClient.class},
                            (proxy, method, args) -> method.getName().equals("getClusterId") ? "captured" : null);
                    return () -> client;
                }

                @Override
                public void killCluster(String id) {
                    throw new UnsupportedOperationException();
                }

                @Override
                public void close() {
                }
            };
        }
    }
}
