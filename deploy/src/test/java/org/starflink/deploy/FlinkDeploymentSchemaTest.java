package org.starflink.deploy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.networknt.schema.JsonSchema;
import com.networknt.schema.JsonSchemaFactory;
import com.networknt.schema.SpecVersion;
import com.networknt.schema.ValidationMessage;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * The FlinkDeployment manifests against the FlinkDeployment CRD of the Flink Kubernetes Operator 1.13.0
 * (src/test/resources/crd/, its source in SOURCE.md), the way an API server with strict field validation
 * (kubectl's default since Kubernetes 1.27) takes them: the CRD's openAPIV3Schema as JSON Schema, and a field the
 * schema does not declare is an error unless the schema preserves unknown fields there (flinkConfiguration does).
 * The pod templates are checked too: the CRD embeds the Pod schema. Negative controls: a misspelt field, a wrong
 * enum value and a misspelt container field each fail.
 */
class FlinkDeploymentSchemaTest {
    private static final Path CRD = DeployFiles.deployDir()
            .resolve("src/test/resources/crd/flinkdeployments.flink.apache.org-v1.yml");

    @Test
    void theManifestsAreValidFlinkDeployments() {
        for (Path file : DeployFiles.flinkDeployments()) {
            assertEquals(List.of(), problems(DeployFiles.single(file)), file.toString());
        }
    }

    @Test
    void aMisspeltFieldFails() {
        ObjectNode manifest = cpu();
        ObjectNode taskManager = (ObjectNode) manifest.path("spec").path("taskManager");
        taskManager.set("resources", taskManager.remove("resource"));          // resource -> resources
        assertEquals(List.of("$.spec.taskManager: property 'resources' is not defined in the schema and the schema "
                + "does not allow additional properties"), problems(manifest));
    }

    @Test
    void aWrongEnumValueFails() {
        ObjectNode manifest = cpu();
        ((ObjectNode) manifest.path("spec").path("job")).put("upgradeMode", "lastState");
        ((ObjectNode) manifest.path("spec")).put("flinkVersion", "v2_9");
        List<String> problems = problems(manifest);
        assertEquals(2, problems.size(), problems.toString());
        assertTrue(problems.get(0).startsWith("$.spec.flinkVersion: does not have a value in the enumeration"),
                problems.toString());
        assertTrue(problems.get(1).startsWith("$.spec.job.upgradeMode: does not have a value in the enumeration"),
                problems.toString());
    }

    @Test
    void aMisspeltFieldInThePodTemplateFails() {
        ObjectNode manifest = cpu();
        ObjectNode container = (ObjectNode) manifest.path("spec").path("podTemplate").path("spec")
                .path("containers").path(0);
        container.set("volumeMount", container.remove("volumeMounts"));
        assertEquals(List.of("$.spec.podTemplate.spec.containers[0]: property 'volumeMount' is not defined in the "
                + "schema and the schema does not allow additional properties"), problems(manifest));
    }

    @Test
    void aWrongKindOrApiVersionFails() {
        ObjectNode manifest = cpu();
        manifest.put("apiVersion", "flink.apache.org/v1");
        manifest.put("kind", "FlinkJob");
        assertEquals(List.of("apiVersion flink.apache.org/v1 is not served by the CRD (flink.apache.org/v1beta1)",
                "kind FlinkJob is not FlinkDeployment"), problems(manifest));
    }

    @Test
    void everySecretTheManifestsReadIsInTheExampleAndEveryEnvReferenceIsDefined() {
        Set<String> defined = new HashSet<>();
        for (JsonNode secret : DeployFiles.documents(DeployFiles.kubernetes("starflink-secrets.example.yaml"))) {
            assertEquals("Secret", secret.path("kind").asText());
            String name = secret.path("metadata").path("name").asText();
            defined.add(name);
            secret.path("stringData").fieldNames().forEachRemaining(key -> defined.add(name + "/" + key));
            secret.path("data").fieldNames().forEachRemaining(key -> defined.add(name + "/" + key));
        }
        Pattern envReference = Pattern.compile("\\$\\{env:([A-Za-z0-9_]+)}");
        for (Path file : DeployFiles.flinkDeployments()) {
            JsonNode manifest = DeployFiles.single(file);
            JsonNode container = mainContainer(manifest.path("spec").path("podTemplate"));
            Set<String> env = new TreeSet<>();
            for (JsonNode var : container.path("env")) {
                env.add(var.path("name").asText());
                JsonNode ref = var.path("valueFrom").path("secretKeyRef");
                if (!ref.isMissingNode()) {
                    String key = ref.path("name").asText() + "/" + ref.path("key").asText();
                    assertTrue(defined.contains(key), file + ": secretKeyRef " + key + " is in no example Secret");
                }
            }
            for (JsonNode volume : manifest.path("spec").path("podTemplate").path("spec").path("volumes")) {
                String secret = volume.path("secret").path("secretName").asText(null);
                assertTrue(secret == null || defined.contains(secret), file + ": Secret " + secret);
            }
            for (String value : DeployFiles.flinkConfiguration(manifest).values()) {
                Matcher m = envReference.matcher(value);
                while (m.find()) {
                    assertTrue(env.contains(m.group(1)), file + ": ${env:" + m.group(1)
                            + "} but flink-main-container has no such variable");
                }
            }
        }
    }

    /** The problems of {@code manifest}, one line each. */
    static List<String> problems(JsonNode manifest) {
        JsonNode crd = DeployFiles.single(CRD);
        List<String> problems = new ArrayList<>();
        String group = crd.path("spec").path("group").asText();
        JsonNode served = null;
        for (JsonNode version : crd.path("spec").path("versions")) {
            if (version.path("served").asBoolean() && manifest.path("apiVersion").asText()
                    .equals(group + "/" + version.path("name").asText())) {
                served = version;
            }
        }
        if (served == null) {
            List<String> names = new ArrayList<>();
            crd.path("spec").path("versions").forEach(v -> names.add(group + "/" + v.path("name").asText()));
            problems.add("apiVersion " + manifest.path("apiVersion").asText() + " is not served by the CRD ("
                    + String.join(", ", names) + ")");
            served = crd.path("spec").path("versions").path(0);
        }
        String kind = crd.path("spec").path("names").path("kind").asText();
        if (!kind.equals(manifest.path("kind").asText())) {
            problems.add("kind " + manifest.path("kind").asText() + " is not " + kind);
        }
        if (manifest.path("metadata").path("name").asText("").isEmpty()) {
            problems.add("metadata.name is missing");
        }
        ObjectNode schema = strict(served.path("schema").path("openAPIV3Schema").deepCopy());
        // the API server validates apiVersion, kind and metadata itself (ObjectMeta), the schema the rest
        ObjectNode root = (ObjectNode) schema.path("properties");
        for (String field : new String[] {"apiVersion", "kind"}) {
            root.putObject(field).put("type", "string");
        }
        root.putObject("metadata").put("type", "object");
        JsonSchema validator = JsonSchemaFactory.getInstance(SpecVersion.VersionFlag.V4).getSchema(schema);
        List<String> messages = new ArrayList<>();
        for (ValidationMessage message : validator.validate(manifest)) {
            messages.add(message.getMessage());
        }
        messages.sort(null);
        problems.addAll(messages);
        return problems;
    }

    /**
     * Strict field validation as the API server does it: an object schema with declared properties and neither
     * additionalProperties nor x-kubernetes-preserve-unknown-fields admits no other field.
     */
    static ObjectNode strict(ObjectNode schema) {
        boolean preserve = schema.path("x-kubernetes-preserve-unknown-fields").asBoolean(false);
        if (schema.has("properties") && !schema.has("additionalProperties") && !preserve) {
            schema.put("additionalProperties", false);
        }
        schema.path("properties").forEach(FlinkDeploymentSchemaTest::strictSchema);
        strictSchema(schema.path("items"));
        strictSchema(schema.path("additionalProperties"));
        for (String combinator : new String[] {"allOf", "anyOf", "oneOf"}) {
            schema.path(combinator).forEach(FlinkDeploymentSchemaTest::strictSchema);
        }
        return schema;
    }

    private static void strictSchema(JsonNode node) {
        if (node instanceof ObjectNode object) {
            strict(object);
        }
    }

    private static JsonNode mainContainer(JsonNode podTemplate) {
        for (JsonNode container : podTemplate.path("spec").path("containers")) {
            if ("flink-main-container".equals(container.path("name").asText())) {
                return container;
            }
        }
        throw new AssertionError("no flink-main-container in the pod template");
    }

    private static ObjectNode cpu() {
        return (ObjectNode) DeployFiles.single(DeployFiles.kubernetes("starflink-cpu.yaml"));
    }
}
