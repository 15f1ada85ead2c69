package org.starflink.operators.kafka;

/**
 * A Kafka record exactly as read, before decoding: where it came from and its bytes. Decoding happens in a separate
 * step ({@link DecodeOrReject}) so that a record that cannot be decoded is routed to the rejected topic with its
 * origin instead of failing the job.
 *
 * @param key may be null
 * @param value may be null (a tombstone)
 * @param timestamp epoch millis, or -1 if the record has none
 */
public record KafkaRawRecord(String topic, int partition, long offset, long timestamp, byte[] key, byte[] value) {}
