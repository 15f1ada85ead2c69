package org.starflink.pipeline;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.lang.reflect.Field;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import org.apache.flink.api.dag.Transformation;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.connector.kafka.sink.KafkaSink;
import org.apache.flink.connector.kafka.source.KafkaSource;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.transformations.SinkTransformation;
import org.apache.flink.streaming.api.transformations.SourceTransformation;
import org.junit.jupiter.api.Test;
import org.starflink.engine.testing.SharedModels;
import org.starflink.operators.kafka.KafkaClientProperties;

/**
 * {@code starflink.kafka.properties.<key>} from Flink's configuration and from the program arguments reaches the
 * Kafka config of every source and sink the cluster job builds; a key the job owns fails the submission.
 */
class KafkaClientPropertiesPassthroughTest {
    private static final String JAAS = "org.apache.kafka.common.security.scram.ScramLoginModule required "
            + "username=\"starflink\" password=\"${env:KAFKA_PASSWORD}\";";

    private static Configuration cluster() {
        Configuration cluster = new Configuration();
        cluster.setString("starflink.model", SharedModels.stories260KDir().resolve("stories260K.bin").toString());
        cluster.setString("starflink.kafka.bootstrap-servers", "broker-0.kafka:9093");
        cluster.setString("starflink.kafka.properties.security.protocol", "SASL_SSL");
        cluster.setString("starflink.kafka.properties.sasl.mechanism", "SCRAM-SHA-512");
        cluster.setString("starflink.kafka.properties.sasl.jaas.config", JAAS);
        cluster.setString("starflink.kafka.properties.ssl.truststore.location", "/etc/kafka/truststore.p12");
        return cluster;
    }

    @Test
    void everySourceAndSinkGetsThePropertiesOfTheConfigurationAndTheArguments() throws Exception {
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment(cluster());
        StarflinkJob.defineClusterJob(env, new String[] {
                "--starflink.kafka.properties.ssl.truststore.location", "/opt/flink/secrets/kafka/truststore.p12",
                "--starflink.kafka.properties.ssl.truststore.type", "PKCS12"});
        Map<String, String> expected = Map.of(
                "security.protocol", "SASL_SSL",
                "sasl.mechanism", "SCRAM-SHA-512",
                "sasl.jaas.config", JAAS,
                "ssl.truststore.location", "/opt/flink/secrets/kafka/truststore.p12", // the argument wins
                "ssl.truststore.type", "PKCS12");

        List<Properties> sources = new ArrayList<>();
        List<Properties> sinks = new ArrayList<>();
        for (Transformation<?> t : allTransformations(env)) {
            if (t instanceof SourceTransformation<?, ?, ?> source && source.getSource() instanceof KafkaSource<?> k) {
                sources.add((Properties) field(KafkaSource.class, "props").get(k));
            }
            if (t instanceof SinkTransformation<?, ?> sink && sink.getSink() instanceof KafkaSink<?> k) {
                sinks.add((Properties) field(KafkaSink.class, "kafkaProducerConfig").get(k));
            }
        }
        assertEquals(2, sources.size(), "documents and questions");
        assertEquals(3, sinks.size(), "answers, rejected and block events");
        for (Properties props : concat(sources, sinks)) {
            expected.forEach((key, value) -> assertEquals(value, props.getProperty(key), key));
            assertEquals("broker-0.kafka:9093", props.getProperty("bootstrap.servers"));
        }
        for (Properties props : sources) {
            assertEquals("starflink", props.getProperty("group.id"));
        }
    }

    @Test
    void aKeyTheJobOwnsFailsTheSubmissionWithOneLineNamingTheSetting() {
        for (String key : KafkaClientProperties.OWNED_KEYS.keySet()) {
            Configuration cluster = cluster();
            cluster.setString("starflink.kafka.properties." + key, "x");
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> StarflinkJob.jobOptions(cluster, new String[0]), key);
            assertEquals("starflink.kafka.properties." + key + " is refused: "
                    + KafkaClientProperties.OWNED_KEYS.get(key), e.getMessage());
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> StarflinkJob.jobOptions(cluster(), new String[] {"--starflink.kafka.properties.group.id", "g"}));
        assertEquals("starflink.kafka.properties.group.id is refused: the consumer group is the job's own setting "
                + "(starflink.kafka.group-id)", e.getMessage());
    }

    @Test
    void withoutPropertiesTheClientsGetOnlyTheJobsOwnSettings() {
        Configuration cluster = new Configuration();
        cluster.setString("starflink.kafka.bootstrap-servers", "127.0.0.1:1");
        assertEquals(Map.of(), StarflinkJob.kafkaClientProperties(StarflinkJob.jobOptions(cluster, new String[0]))
                .asMap());
    }

    private static Set<Transformation<?>> allTransformations(StreamExecutionEnvironment env) {
        Set<Transformation<?>> all = new LinkedHashSet<>();
        for (Transformation<?> t : env.getTransformations()) {
            all.addAll(t.getTransitivePredecessors());
        }
        return all;
    }

    private static List<Properties> concat(List<Properties> a, List<Properties> b) {
        List<Properties> all = new ArrayList<>(a);
        all.addAll(b);
        return all;
    }

    private static Field field(Class<?> type, String name) throws NoSuchFieldException {
        Field field = type.getDeclaredField(name);
        field.setAccessible(true);
        return field;
    }
}
