package org.starflink.operators.kafka;

import java.util.Collections;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;

/**
 * Kafka client properties given by the user (security: {@code security.protocol}, {@code sasl.*}, {@code ssl.*};
 * tuning; config providers) that go to every source and sink the job builds. The keys the job sets itself are
 * refused, each with the reason, so that a setting never silently loses against the job's own.
 */
public final class KafkaClientProperties {

    /** No user properties. */
    public static final KafkaClientProperties NONE = new KafkaClientProperties(Map.of());

    /** The client properties the job's sources and sinks set themselves, with why a user may not. */
    public static final Map<String, String> OWNED_KEYS = Map.ofEntries(
            Map.entry("bootstrap.servers", "the brokers are the job's own setting (starflink.kafka.bootstrap-servers)"),
            Map.entry("group.id", "the consumer group is the job's own setting (starflink.kafka.group-id)"),
            Map.entry("key.deserializer", "the sources read raw bytes and decode the Avro records themselves"),
            Map.entry("value.deserializer", "the sources read raw bytes and decode the Avro records themselves"),
            Map.entry("key.serializer", "the sinks write string keys and Avro values themselves"),
            Map.entry("value.serializer", "the sinks write string keys and Avro values themselves"),
            Map.entry("transactional.id", "the exactly-once sink derives its transactional ids per subtask and "
                    + "checkpoint (starflink.answers.exactly-once)"),
            Map.entry("transaction.timeout.ms", "the exactly-once sink sets " + AvroKafka.TRANSACTION_TIMEOUT_MS
                    + " ms, below the broker's default maximum, so a restored job does not restart forever"),
            Map.entry("isolation.level", "the sources read the input topics as the clients write them "
                    + "(read_uncommitted, Kafka's default)"),
            Map.entry("enable.auto.commit", "the sources commit offsets on completed checkpoints, never on a timer"),
            Map.entry("auto.offset.reset", "the sources start from the earliest offset, the job's own choice"));

    private final Map<String, String> properties;

    private KafkaClientProperties(Map<String, String> properties) {
        this.properties = properties;
    }

    /**
     * The given client properties ({@code security.protocol -> SASL_SSL}, ...); an owned key fails with one line
     * that names it as {@code origin + key} (origin: where the user wrote it, e.g. a configuration prefix).
     */
    public static KafkaClientProperties of(Map<String, String> properties, String origin) {
        Map<String, String> copy = new TreeMap<>();
        properties.forEach((key, value) -> {
            String reason = OWNED_KEYS.get(key);
            if (reason != null) {
                throw new IllegalArgumentException(origin + key + " is refused: " + reason);
            }
            copy.put(key, value);
        });
        return new KafkaClientProperties(Collections.unmodifiableMap(copy));
    }

    /** The properties, sorted by key. */
    public Map<String, String> asMap() {
        return new TreeMap<>(properties);
    }

    /** A fresh {@link Properties} with these properties, for a source or sink builder. */
    public Properties toProperties() {
        Properties props = new Properties();
        props.putAll(properties);
        return props;
    }

    @Override
    public String toString() {
        return "KafkaClientProperties" + properties.keySet();
    }
}
