package org.starflink.deploy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.flink.configuration.Configuration;
import org.junit.jupiter.api.Test;
import org.starflink.pipeline.StarflinkOptions;

/**
 * The Dockerfiles agree with the repository and the other deployment files: every COPY source exists here or is
 * a build output named as the build names it, the job jar lands where the FlinkDeployments' jarURI points, the
 * model where starflink.model points (with every file its index names), config.yaml where Flink reads it, and the
 * GPU library where STARFLINK_GPU_LIBRARY points. No image is built (no Docker daemon here).
 */
class DockerfilesTest {
    private static final String JOB_JAR = "pipeline/target/starflink-job.jar";
    /** Issue 12 moves DJL out of the shaded job jar into this folder; until then it does not exist. */
    private static final String FLINK_LIB = "pipeline/target/flink-lib/";

    record Copy(String from, List<String> sources, String destination) {
    }

    @Test
    void everyCopySourceExistsOrIsABuildOutput() {
        for (String dockerfile : new String[] {"Dockerfile", "Dockerfile.gpu"}) {
            for (Copy copy : copies(dockerfile)) {
                if (copy.from() != null) {
                    continue;
                }
                for (String source : copy.sources()) {
                    boolean buildOutput = source.equals(JOB_JAR) || source.equals(FLINK_LIB);
                    assertTrue(buildOutput || Files.exists(DeployFiles.projectDir().resolve(source)),
                            dockerfile + ": COPY " + source + " exists in no checkout");
                }
            }
        }
        // the job jar is the name the shade plugin gives it
        assertTrue(DeployFiles.read(DeployFiles.projectDir().resolve("pipeline/pom.xml"))
                .contains("<finalName>starflink-job</finalName>"));
    }

    @Test
    void theImagesPutTheJarTheModelAndTheConfigWhereTheDeploymentsLook() {
        Configuration configYaml = FlinkConfigurationTest.configYaml();
        for (String dockerfile : new String[] {"Dockerfile", "Dockerfile.gpu"}) {
            Map<String, String> destinations = new LinkedHashMap<>();
            for (Copy copy : copies(dockerfile)) {
                for (String source : copy.sources()) {
                    destinations.put(source, copy.destination());
                }
            }
            assertEquals("/opt/flink/usrlib/starflink-job.jar", destinations.get(JOB_JAR), dockerfile);
            assertEquals("/opt/flink/lib/", destinations.get(FLINK_LIB), dockerfile);
            assertEquals("/opt/flink/conf/config.yaml", destinations.get("deploy/conf/config.yaml"), dockerfile);
            String model = configYaml.get(StarflinkOptions.MODEL);
            Set<String> modelFiles = new TreeSet<>();
            destinations.forEach((source, destination) -> {
                if (destination.equals(model + "/")) {
                    modelFiles.add(Path.of(source).getFileName().toString());
                }
            });
            assertTrue(modelFiles.containsAll(modelFilesNeeded()), dockerfile + ": " + modelFiles);
        }
        for (Path file : DeployFiles.flinkDeployments()) {
            JsonNode manifest = DeployFiles.single(file);
            assertEquals("local:///opt/flink/usrlib/starflink-job.jar",
                    manifest.path("spec").path("job").path("jarURI").asText(), file.toString());
            assertEquals(FlinkConfigurationTest.configYaml().get(StarflinkOptions.MODEL),
                    DeployFiles.flinkConfiguration(manifest).get(StarflinkOptions.MODEL.key()), file.toString());
        }
    }

    @Test
    void theGpuImageHasItsLibraryWhereTheBackendLoadsIt() {
        String gpuLibrary = env("Dockerfile.gpu").get("STARFLINK_GPU_LIBRARY");
        List<String> fromKernels = new ArrayList<>();
        for (Copy copy : copies("Dockerfile.gpu")) {
            if ("kernels".equals(copy.from())) {
                for (String source : copy.sources()) {
                    fromKernels.add(copy.destination() + Path.of(source).getFileName());
                }
            }
        }
        assertTrue(fromKernels.contains(gpuLibrary), gpuLibrary + " not in " + fromKernels);
        assertTrue(fromKernels.contains("/opt/starflink/gpu/libstarflink_gpu.so"), fromKernels.toString());
        // the names build-native.sh gives them
        String build = DeployFiles.read(DeployFiles.projectDir().resolve("gpu-kernels/build-native.sh"))
                + DeployFiles.read(DeployFiles.projectDir().resolve("gpu-kernels/build.sh"));
        assertTrue(build.contains("build/libstarflink_gpu_jni.so") && build.contains("build/libstarflink_gpu.so"));
    }

    /** config.json, the tokenizer and every weight file the safetensors index names. */
    private static Set<String> modelFilesNeeded() {
        Path model = DeployFiles.projectDir().resolve("models/starflink-synth-14m");
        Set<String> files = new TreeSet<>(List.of("config.json", "tokenizer.json", "model.safetensors.index.json"));
        try {
            DeployFiles.YAML.readTree(model.resolve("model.safetensors.index.json").toFile()).path("weight_map")
                    .forEach(f -> files.add(f.asText()));
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
        return files;
    }

    /** The Dockerfile's instructions, continuation lines joined, comments dropped. */
    static List<String> instructions(String dockerfile) {
        List<String> instructions = new ArrayList<>();
        StringBuilder current = new StringBuilder();
        for (String line : DeployFiles.read(DeployFiles.deployDir().resolve("docker").resolve(dockerfile)).split("\n")) {
            if (line.trim().startsWith("#")) {
                continue;
            }
            boolean continued = line.endsWith("\\");
            current.append(continued ? line.substring(0, line.length() - 1) : line).append(' ');
            if (!continued) {
                if (!current.toString().isBlank()) {
                    instructions.add(current.toString().trim().replaceAll("\\s+", " "));
                }
                current.setLength(0);
            }
        }
        return instructions;
    }

    static List<Copy> copies(String dockerfile) {
        List<Copy> copies = new ArrayList<>();
        for (String instruction : instructions(dockerfile)) {
            if (!instruction.startsWith("COPY ")) {
                continue;
            }
            List<String> words = new ArrayList<>(List.of(instruction.substring(5).split(" ")));
            String from = null;
            if (words.get(0).startsWith("--from=")) {
                from = words.remove(0).substring(7);
            }
            String destination = words.remove(words.size() - 1);
            copies.add(new Copy(from, words, destination));
        }
        return copies;
    }

    static Map<String, String> env(String dockerfile) {
        Map<String, String> env = new LinkedHashMap<>();
        Pattern pair = Pattern.compile("([A-Z_]+)=(\\S+)");
        for (String instruction : instructions(dockerfile)) {
            if (instruction.startsWith("ENV ")) {
                Matcher m = pair.matcher(instruction);
                while (m.find()) {
                    env.put(m.group(1), m.group(2));
                }
            }
        }
        return env;
    }
}
