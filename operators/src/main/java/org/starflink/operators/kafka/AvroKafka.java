package org.starflink.operators.kafka;

import java.nio.charset.StandardCharsets;
import java.util.Properties;
import org.apache.avro.specific.SpecificRecord;
import org.apache.flink.api.common.serialization.SerializationSchema;
import org.apache.flink.connector.base.DeliveryGuarantee;
import org.apache.flink.connector.kafka.sink.KafkaRecordSerializationSchema;
import org.apache.flink.connector.kafka.sink.KafkaSink;
import org.apache.flink.connector.kafka.source.KafkaSource;
import org.apache.flink.connector.kafka.source.KafkaSourceBuilder;
import org.apache.flink.connector.kafka.source.enumerator.initializer.OffsetsInitializer;
import org.apache.flink.formats.avro.AvroSerializationSchema;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.datastream.SingleOutputStreamOperator;
import org.apache.flink.util.function.SerializableFunction;

/**
 * Kafka sources and sinks for the wire types: plain Avro binary values (no schema registry is available here),
 * string keys. Every source and sink takes the user's {@link KafkaClientProperties} (security, tuning) under the
 * settings it owns.
 */
public final class AvroKafka {

    /** Exactly-once sinks: below the broker's default maximum (15 min), so the job does not restart forever. */
    public static final int TRANSACTION_TIMEOUT_MS = 60_000;

    private AvroKafka() {}

    /**
     * Reads {@code topic} as raw records; decode them with {@link #decode}.
     *
     * @param stoppingOffsets null for an unbounded source
     */
    public static KafkaSource<KafkaRawRecord> rawSource(String bootstrapServers, String topic, String groupId,
            OffsetsInitializer startingOffsets, OffsetsInitializer stoppingOffsets) {
        return rawSource(bootstrapServers, topic, groupId, startingOffsets, stoppingOffsets, KafkaClientProperties.NONE);
    }

    /**
     * Reads {@code topic} as raw records with the user's client properties (the job's own settings set after
     * them; {@link KafkaClientProperties} refuses those keys).
     *
     * @param stoppingOffsets null for an unbounded source
     */
    public static KafkaSource<KafkaRawRecord> rawSource(String bootstrapServers, String topic, String groupId,
            OffsetsInitializer startingOffsets, OffsetsInitializer stoppingOffsets, KafkaClientProperties client) {
        KafkaSourceBuilder<KafkaRawRecord> builder = KafkaSource.<KafkaRawRecord>builder()
                .setProperties(client.toProperties())
                .setBootstrapServers(bootstrapServers)
                .setTopics(topic)
                .setGroupId(groupId)
                .setStartingOffsets(startingOffsets)
                .setDeserializer(new RawRecordDeserializationSchema());
        if (stoppingOffsets != null) {
            builder.setBounded(stoppingOffsets);
        }
        return builder.build();
    }

    /**
     * Decodes raw records into {@code type}; undecodable ones go to {@link DecodeOrReject#REJECTED} on the
     * returned stream ({@code decoded.getSideOutput(DecodeOrReject.REJECTED)}).
     */
    public static <T extends SpecificRecord> SingleOutputStreamOperator<T> decode(DataStream<KafkaRawRecord> raw,
            Class<T> type, String uid) {
        return raw.process(new DecodeOrReject<>(type)).uid(uid).name("decode " + type.getSimpleName());
    }

    /**
     * Writes {@code type} as plain Avro binary, keyed by {@code key} (UTF-8).
     *
     * @param transactionalIdPrefix required for {@link DeliveryGuarantee#EXACTLY_ONCE}, unique per sink and job
     */
    public static <T extends SpecificRecord> KafkaSink<T> avroSink(String bootstrapServers, String topic,
            Class<T> type, SerializableFunction<T, String> key, DeliveryGuarantee guarantee,
            String transactionalIdPrefix) {
        return avroSink(bootstrapServers, topic, type, key, guarantee, transactionalIdPrefix,
                KafkaClientProperties.NONE);
    }

    /**
     * Writes {@code type} as plain Avro binary, keyed by {@code key} (UTF-8), with the user's client properties
     * (the job's own settings set after them).
     *
     * @param transactionalIdPrefix required for {@link DeliveryGuarantee#EXACTLY_ONCE}, unique per sink and job
     */
    public static <T extends SpecificRecord> KafkaSink<T> avroSink(String bootstrapServers, String topic,
            Class<T> type, SerializableFunction<T, String> key, DeliveryGuarantee guarantee,
            String transactionalIdPrefix, KafkaClientProperties client) {
        SerializationSchema<T> keySchema = value -> key.apply(value).getBytes(StandardCharsets.UTF_8);
        Properties producer = client.toProperties();
        producer.setProperty("transaction.timeout.ms", String.valueOf(TRANSACTION_TIMEOUT_MS));
        var builder = KafkaSink.<T>builder()
                .setKafkaProducerConfig(producer)
                .setBootstrapServers(bootstrapServers)
                .setDeliveryGuarantee(guarantee)
                .setRecordSerializer(KafkaRecordSerializationSchema.<T>builder()
                        .setTopic(topic)
                        .setKeySerializationSchema(keySchema)
                        .setValueSerializationSchema(AvroSerializationSchema.forSpecific(type))
                        .build());
        if (transactionalIdPrefix != null) {
            builder.setTransactionalIdPrefix(transactionalIdPrefix);
        }
        return builder.build();
    }
}
