package org.starflink.operators.kafka;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.lang.reflect.Field;
import java.util.Map;
import java.util.Properties;
import org.apache.flink.connector.base.DeliveryGuarantee;
import org.apache.flink.connector.kafka.sink.KafkaSink;
import org.apache.flink.connector.kafka.source.KafkaSource;
import org.apache.flink.connector.kafka.source.enumerator.initializer.OffsetsInitializer;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.junit.jupiter.api.Test;
import org.starflink.schemas.AnswerToken;

/** The user's client properties reach the built source's and sink's Kafka configs; the job's own keys are refused. */
class KafkaClientPropertiesTest {
    private static final Map<String, String> SECURITY = Map.of(
            "security.protocol", "SASL_SSL",
            "sasl.mechanism", "SCRAM-SHA-512",
            "sasl.jaas.config", "org.apache.kafka.common.security.scram.ScramLoginModule required "
                    + "username=\"u\" password=\"p\";",
            "ssl.truststore.location", "/opt/flink/secrets/kafka/truststore.p12");

    @Test
    void everyPropertyReachesTheSourcesConsumerConfigNextToTheJobsOwn() throws Exception {
        KafkaSource<KafkaRawRecord> source = AvroKafka.rawSource("broker:9093", "documents", "starflink",
                OffsetsInitializer.earliest(), null, KafkaClientProperties.of(SECURITY, "test."));
        Properties props = (Properties) field(KafkaSource.class, "props").get(source);
        SECURITY.forEach((key, value) -> assertEquals(value, props.getProperty(key), key));
        assertEquals("broker:9093", props.getProperty("bootstrap.servers"));
        assertEquals("starflink", props.getProperty("group.id"));
    }

    @Test
    void everyPropertyReachesTheSinksProducerConfigNextToTheJobsOwn() throws Exception {
        KafkaSink<AnswerToken> sink = AvroKafka.avroSink("broker:9093", "answers", AnswerToken.class,
                AnswerToken::getQuestionId, DeliveryGuarantee.EXACTLY_ONCE, "starflink-answers",
                KafkaClientProperties.of(SECURITY, "test."));
        Properties props = (Properties) field(KafkaSink.class, "kafkaProducerConfig").get(sink);
        SECURITY.forEach((key, value) -> assertEquals(value, props.getProperty(key), key));
        assertEquals("broker:9093", props.getProperty("bootstrap.servers"));
        assertEquals(String.valueOf(AvroKafka.TRANSACTION_TIMEOUT_MS), props.getProperty("transaction.timeout.ms"));
    }

    @Test
    void everyKeyTheJobOwnsIsRefusedWithOneLineNamingItAndWhy() {
        for (String key : KafkaClientProperties.OWNED_KEYS.keySet()) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> KafkaClientProperties.of(Map.of("security.protocol", "SSL", key, "x"), "prefix."), key);
            assertEquals("prefix." + key + " is refused: " + KafkaClientProperties.OWNED_KEYS.get(key),
                    e.getMessage());
            assertEquals(-1, e.getMessage().indexOf('\n'), key);
        }
    }

    @Test
    void secretsCanStayInTheEnvironmentThroughKafkasConfigProviders() throws Exception {
        // What deploy/ does with the Kubernetes Secret: the value is resolved by the Kafka client where it runs.
        KafkaSource<KafkaRawRecord> source = AvroKafka.rawSource("broker:9093", "documents", "starflink",
                OffsetsInitializer.earliest(), null, KafkaClientProperties.of(Map.of(
                        "config.providers", "env",
                        "config.providers.env.class", "org.apache.kafka.common.config.provider.EnvVarConfigProvider",
                        "sasl.jaas.config", "${env:PATH}"), "test."));
        Properties props = (Properties) field(KafkaSource.class, "props").get(source);
        ConsumerConfig resolved = new ConsumerConfig(props);
        assertEquals(System.getenv("PATH"), resolved.getPassword("sasl.jaas.config").value());
    }

    @Test
    void itsTextNamesTheKeysButNeverTheValues() {
        assertEquals("KafkaClientProperties[sasl.jaas.config, sasl.mechanism, security.protocol, "
                + "ssl.truststore.location]", KafkaClientProperties.of(SECURITY, "").toString());
    }

    private static Field field(Class<?> type, String name) throws NoSuchFieldException {
        Field field = type.getDeclaredField(name);
        field.setAccessible(true);
        return field;
    }
}
