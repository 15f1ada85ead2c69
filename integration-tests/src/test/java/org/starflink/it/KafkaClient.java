package org.starflink.it;

import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.UUID;
import org.apache.avro.specific.SpecificRecord;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.starflink.operators.kafka.StrictAvroDecoder;
import org.starflink.pipeline.client.StarflinkClient;

/** A plain Kafka producer and consumer of the job's Avro records, as an outside client would use them. */
final class KafkaClient implements AutoCloseable {
    private final String bootstrap;
    private final KafkaProducer<byte[], byte[]> producer;
    private final org.apache.kafka.clients.admin.Admin admin;

    KafkaClient(String bootstrap) {
        this.bootstrap = bootstrap;
        Properties adminProps = new Properties();
        adminProps.put("bootstrap.servers", bootstrap);
        this.admin = org.apache.kafka.clients.admin.Admin.create(adminProps);
        Properties props = new Properties();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        props.put(ProducerConfig.ACKS_CONFIG, "all");
        props.put(ProducerConfig.LINGER_MS_CONFIG, "0");
        producer = new KafkaProducer<>(props);
    }

    /** Sends and waits for the broker's confirmation; returns where the record went. */
    <T extends SpecificRecord> org.apache.kafka.clients.producer.RecordMetadata send(String topic, String key,
                                                                                    T record) {
        return sendRaw(topic, key, StarflinkClient.encode(record));
    }

    /** As {@link #send}, with the record's Kafka timestamp (CreateTime) set to {@code timestampMs}. */
    <T extends SpecificRecord> org.apache.kafka.clients.producer.RecordMetadata sendAt(String topic, String key,
                                                                                      T record, long timestampMs) {
        try {
            return producer.send(new ProducerRecord<>(topic, null, timestampMs, key.getBytes(),
                    StarflinkClient.encode(record))).get();
        } catch (InterruptedException | java.util.concurrent.ExecutionException e) {
            throw new AssertionError("record to " + topic + " not confirmed", e);
        }
    }

    org.apache.kafka.clients.producer.RecordMetadata sendRaw(String topic, String key, byte[] value) {
        try {
            return producer.send(new ProducerRecord<>(topic, key == null ? null : key.getBytes(), value)).get();
        } catch (InterruptedException | java.util.concurrent.ExecutionException e) {
            throw new AssertionError("record to " + topic + " not confirmed", e);
        }
    }

    /** Every record of a topic, read from the beginning until {@code done} holds or the timeout passes. */
    <T extends SpecificRecord> List<T> readUntil(String topic, Class<T> type, java.util.function.Predicate<List<T>> done,
                                                 Duration timeout) throws IOException {
        return readUntil(topic, type, done, timeout, false);
    }

    /** @param readCommitted see only committed transactions, as a consumer of exactly-once answers does */
    <T extends SpecificRecord> List<T> readUntil(String topic, Class<T> type, java.util.function.Predicate<List<T>> done,
                                                 Duration timeout, boolean readCommitted) throws IOException {
        Properties props = new Properties();
        props.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, readCommitted ? "read_committed" : "read_uncommitted");
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ConsumerConfig.GROUP_ID_CONFIG, "test-" + UUID.randomUUID());
        props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        StrictAvroDecoder<T> decoder = new StrictAvroDecoder<>(type);
        List<T> records = new ArrayList<>();
        long deadline = System.nanoTime() + timeout.toNanos();
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(props)) {
            consumer.subscribe(List.of(topic));
            while (!done.test(records) && System.nanoTime() < deadline) {
                for (ConsumerRecord<byte[], byte[]> record : consumer.poll(Duration.ofMillis(200))) {
                    records.add(decoder.decode(record.value()));
                }
            }
        }
        return records;
    }

    /**
     * Whether consumer group {@code group} has committed offsets at the end of every partition of
     * {@code topic}. The job's Kafka sources commit on checkpoint completion, so this means that a completed
     * checkpoint covers every record of the topic: the job has processed them all, also after a restore.
     */
    boolean committedToEnd(String group, String topic) throws Exception {
        {
            var committed = admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get();
            var partitions = admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic).partitions();
            Map<org.apache.kafka.common.TopicPartition, org.apache.kafka.clients.admin.OffsetSpec> latest =
                    new java.util.HashMap<>();
            for (var partition : partitions) {
                latest.put(new org.apache.kafka.common.TopicPartition(topic, partition.partition()),
                        org.apache.kafka.clients.admin.OffsetSpec.latest());
            }
            for (var end : admin.listOffsets(latest).all().get().entrySet()) {
                var offset = committed.get(end.getKey());
                long position = offset == null ? 0 : offset.offset();
                if (position < end.getValue().offset()) {
                    return false;
                }
            }
            return true;
        }
    }

    @Override
    public void close() {
        admin.close();
        producer.close();
    }
}
