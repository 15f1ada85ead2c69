package org.starflink.deploy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** The files under deploy/, read the way the tests need them. */
final class DeployFiles {
    static final ObjectMapper YAML = new YAMLMapper();

    private DeployFiles() {
    }

    static Path deployDir() {
        return Path.of(System.getProperty("starflink.deploy.dir", ".")).toAbsolutePath().normalize();
    }

    static Path projectDir() {
        return deployDir().getParent();
    }

    static Path conf() {
        return deployDir().resolve("conf");
    }

    static Path kubernetes(String file) {
        return deployDir().resolve("kubernetes").resolve(file);
    }

    /** The two FlinkDeployment manifests. */
    static List<Path> flinkDeployments() {
        return List.of(kubernetes("starflink-cpu.yaml"), kubernetes("starflink-gpu.yaml"));
    }

    /** Every YAML document of {@code file}. */
    static List<JsonNode> documents(Path file) {
        try (var parser = new YAMLFactory().createParser(file.toFile())) {
            List<JsonNode> docs = new ArrayList<>();
            YAML.readValues(parser, JsonNode.class).forEachRemaining(doc -> {
                if (doc != null && !doc.isNull() && !doc.isMissingNode()) {
                    docs.add(doc);
                }
            });
            return docs;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static JsonNode single(Path file) {
        List<JsonNode> docs = documents(file);
        if (docs.size() != 1) {
            throw new IllegalStateException(file + ": " + docs.size() + " documents, expected 1");
        }
        return docs.get(0);
    }

    /** A FlinkDeployment's spec.flinkConfiguration as Flink's flat string map (what the operator writes). */
    static Map<String, String> flinkConfiguration(JsonNode deployment) {
        Map<String, String> conf = new LinkedHashMap<>();
        deployment.path("spec").path("flinkConfiguration").fields()
                .forEachRemaining(e -> conf.put(e.getKey(), e.getValue().asText()));
        return conf;
    }

    static String read(Path file) {
        try {
            return Files.readString(file);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
