package org.starflink.deploy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.flink.configuration.Configuration;
import org.junit.jupiter.api.Test;
import org.starflink.pipeline.StarflinkOptions;

/** deploy/kubernetes/kafka-topics.yaml creates the topics the job reads and writes, with the settings it needs. */
class KafkaTopicsTest {

    @Test
    void theTopicsAreTheJobsWithDocumentsKeptForReingest() {
        Map<String, JsonNode> topics = new LinkedHashMap<>();
        for (JsonNode topic : DeployFiles.documents(DeployFiles.kubernetes("kafka-topics.yaml"))) {
            assertEquals("kafka.strimzi.io/v1beta2", topic.path("apiVersion").asText());
            assertEquals("KafkaTopic", topic.path("kind").asText());
            assertTrue(topic.path("metadata").path("labels").has("strimzi.io/cluster"));
            assertTrue(topic.path("spec").path("partitions").asInt() >= 1);
            topics.put(topic.path("metadata").path("name").asText(), topic);
        }
        Configuration conf = FlinkConfigurationTest.configYaml();
        assertEquals(List.of(conf.get(StarflinkOptions.DOCUMENTS_TOPIC), conf.get(StarflinkOptions.QUESTIONS_TOPIC),
                conf.get(StarflinkOptions.ANSWERS_TOPIC), conf.get(StarflinkOptions.REJECTED_TOPIC),
                conf.get(StarflinkOptions.BLOCK_EVENTS_TOPIC)),
                List.copyOf(topics.keySet()));
        assertEquals(List.of(StarflinkOptions.DOCUMENTS_TOPIC.defaultValue(),
                StarflinkOptions.QUESTIONS_TOPIC.defaultValue(), StarflinkOptions.ANSWERS_TOPIC.defaultValue(),
                StarflinkOptions.REJECTED_TOPIC.defaultValue(), StarflinkOptions.BLOCK_EVENTS_TOPIC.defaultValue()),
                List.copyOf(topics.keySet()));
        JsonNode documents = topics.get("documents").path("spec").path("config");
        // a new model or a lost state re-ingests every document from here; one key has many chunks: no compaction
        assertEquals("-1", documents.path("retention.ms").asText());
        assertEquals("delete", documents.path("cleanup.policy").asText());
    }
}
