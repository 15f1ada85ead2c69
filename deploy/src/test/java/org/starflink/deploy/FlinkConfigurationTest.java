package org.starflink.deploy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.apache.flink.configuration.CheckpointingOptions;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.CoreOptions;
import org.apache.flink.configuration.GlobalConfiguration;
import org.apache.flink.configuration.HighAvailabilityOptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.starflink.operators.kafka.KafkaClientProperties;
import org.starflink.pipeline.StarflinkJob;
import org.starflink.pipeline.StarflinkOptions;

/**
 * deploy/conf/config.yaml, loaded by Flink's own loader, and the FlinkDeployments' flinkConfiguration state
 * everything the job needs ({@link DeploymentSettings}: ClusterSettings, StarflinkOptions, the JVM flags,
 * StarflinkJob.jobOptions).
 */
class FlinkConfigurationTest {

    static Configuration configYaml() {
        return GlobalConfiguration.loadConfiguration(DeployFiles.conf().toString());
    }

    @Test
    void configYamlStatesEverySettingTheJobNeeds() {
        Configuration conf = configYaml();
        assertEquals(List.of(), DeploymentSettings.problems(conf, new String[0]));
        assertTrue(conf.getOptional(StarflinkOptions.DOCUMENT_TTL).isPresent(), "a state TTL for idle documents");
        assertTrue(conf.get(CoreOptions.FLINK_JVM_OPTIONS).contains("-Dai.djl.offline=true"));
        assertEquals(List.of("ai.djl."), conf.get(CoreOptions.ALWAYS_PARENT_FIRST_LOADER_PATTERNS_ADDITIONAL));
    }

    @Test
    void everyFlinkDeploymentStatesEverySettingTheJobNeeds() {
        for (Path file : DeployFiles.flinkDeployments()) {
            JsonNode deployment = DeployFiles.single(file);
            Configuration conf = Configuration.fromMap(DeployFiles.flinkConfiguration(deployment));
            String[] args = programArgs(deployment);
            assertEquals(List.of(), DeploymentSettings.problems(conf, args), file.toString());
            // upgradeMode last-state resumes from the checkpoint the HA metadata names: HA on, state on S3
            assertEquals("last-state", deployment.path("spec").path("job").path("upgradeMode").asText(), file.toString());
            assertEquals("kubernetes", conf.get(HighAvailabilityOptions.HA_MODE), file.toString());
            for (String dir : new String[] {conf.get(CheckpointingOptions.CHECKPOINTS_DIRECTORY),
                    conf.get(CheckpointingOptions.SAVEPOINT_DIRECTORY),
                    conf.get(HighAvailabilityOptions.HA_STORAGE_PATH)}) {
                assertTrue(dir.startsWith("s3://"), file + ": " + dir);
            }
            // the job's Kafka clients get the security settings
            Map<String, String> kafka = StarflinkJob.kafkaClientProperties(StarflinkJob.jobOptions(conf, args)).asMap();
            assertEquals("SASL_SSL", kafka.get("security.protocol"), file.toString());
        }
    }

    @Test
    void everyKeyIsOneFlinkDeclaresNoMisspelling() {
        assertEquals(List.of(), FlinkOptionKeys.unknown(configYaml().keySet()), "config.yaml");
        for (Path file : DeployFiles.flinkDeployments()) {
            assertEquals(List.of(), FlinkOptionKeys.unknown(DeployFiles.flinkConfiguration(DeployFiles.single(file))
                    .keySet()), file.toString());
        }
        // negative control
        assertEquals(List.of("execution.checkpointing.min-pasue"),
                FlinkOptionKeys.unknown(List.of("execution.checkpointing.min-pause", "execution.checkpointing.min-pasue")));
    }

    @Test
    void theGpuDeploymentAsksForOneGpuPerTaskManagerAndTheGpuBackend() {
        JsonNode gpu = DeployFiles.single(DeployFiles.kubernetes("starflink-gpu.yaml"));
        Configuration conf = Configuration.fromMap(DeployFiles.flinkConfiguration(gpu));
        assertEquals("gpu", conf.get(StarflinkOptions.BACKEND));
        assertEquals("gpu", conf.getString("external-resources", ""));
        assertEquals("1", conf.getString("external-resource.gpu.amount", ""));
        assertEquals("nvidia.com/gpu", conf.getString("external-resource.gpu.kubernetes.config-key", ""));
        assertEquals("org.apache.flink.externalresource.gpu.GPUDriverFactory",
                conf.getString("external-resource.gpu.driver-factory.class", ""));
    }

    @Test
    void theCheckCatchesAMissingSettingAWrongValueAMisspeltOptionAndAMissingJvmFlag(@TempDir Path dir)
            throws Exception {
        // negative control: the same config.yaml, four lines broken; Flink's loader reads it again
        List<String> lines = new ArrayList<>();
        for (String line : Files.readAllLines(DeployFiles.conf().resolve("config.yaml"))) {
            if (line.startsWith("execution.buffer-timeout.interval:")) {
                continue;                                                        // missing
            }
            lines.add(line.replace("execution.checkpointing.unaligned.enabled: false",
                            "execution.checkpointing.unaligned.enabled: true")     // wrong value
                    .replace("starflink.block-size:", "starflink.blok-size:")      // misspelt
                    .replace("  --add-opens=java.base/java.nio=ALL-UNNAMED", "")); // a flag dropped
        }
        Files.write(dir.resolve("config.yaml"), lines);
        List<String> problems = DeploymentSettings.problems(
                GlobalConfiguration.loadConfiguration(dir.toString()), new String[0]);
        assertEquals(List.of(
                "execution.checkpointing.unaligned.enabled must be false, is true",
                "execution.buffer-timeout.interval must be PT0S, is unset",
                "starflink.blok-size is no Starflink option (StarflinkOptions)",
                "env.java.opts.all lacks --add-opens=java.base/java.nio=ALL-UNNAMED",
                "the job refuses it: execution.checkpointing.unaligned.enabled is true: the per-layer loop needs "
                        + "aligned checkpoints (docs/loop.md); set it to false"), problems);
    }

    @Test
    void anOwnedKafkaKeyInADeploymentIsCaught() {
        Map<String, String> flink = new java.util.HashMap<>(DeployFiles.flinkConfiguration(
                DeployFiles.single(DeployFiles.kubernetes("starflink-cpu.yaml"))));
        flink.put("starflink.kafka.properties.group.id", "other");
        assertEquals(List.of("the job refuses it: starflink.kafka.properties.group.id is refused: "
                        + KafkaClientProperties.OWNED_KEYS.get("group.id")),
                DeploymentSettings.problems(Configuration.fromMap(flink), new String[0]));
    }

    static String[] programArgs(JsonNode deployment) {
        List<String> args = new ArrayList<>();
        deployment.path("spec").path("job").path("args").forEach(a -> args.add(a.asText()));
        return args.toArray(new String[0]);
    }
}
