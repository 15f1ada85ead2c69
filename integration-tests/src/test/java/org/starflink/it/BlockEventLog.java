package org.starflink.it;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.starflink.operators.kafka.StrictAvroDecoder;
import org.starflink.schemas.BlockEvent;
import org.starflink.schemas.BlockEventKind;

/**
 * The job's block-events topic as a test sees it: read through the broker from the beginning, as any process
 * of a real cluster's job writes it. What phase 1 did to a block is counted from here (encodes, encodes skipped).
 *
 * <p>The sink is at-least-once: an event is in the topic at the latest once a checkpoint after it completed
 * (the sink flushes before it acknowledges). Counting right after such a checkpoint with {@link #readToEnd} sees
 * every event written before it; an encode is never counted twice (no Flink replay repeats an event without
 * repeating the encode).
 */
final class BlockEventLog implements AutoCloseable {
    /** Something that fails the wait early, e.g. "the job is still running". */
    interface Check {
        void run() throws Exception;
    }

    private final KafkaConsumer<byte[], byte[]> consumer;
    private final List<TopicPartition> partitions;
    private final StrictAvroDecoder<BlockEvent> decoder = new StrictAvroDecoder<>(BlockEvent.class);
    private final List<BlockEvent> events = new ArrayList<>();

    BlockEventLog(String bootstrap, String topic) {
        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        consumer = new KafkaConsumer<>(props);
        partitions = consumer.partitionsFor(topic).stream().map(p -> new TopicPartition(topic, p.partition()))
                .toList();
        consumer.assign(partitions);
        consumer.seekToBeginning(partitions);
    }

    private void poll(Duration timeout) throws java.io.IOException {
        for (ConsumerRecord<byte[], byte[]> record : consumer.poll(timeout)) {
            events.add(decoder.decode(record.value()));
        }
    }

    /** Every event in the topic now: reads up to the partitions' current end, so none written before is missed. */
    List<BlockEvent> readToEnd() throws java.io.IOException {
        Map<TopicPartition, Long> end = consumer.endOffsets(partitions);
        while (end.entrySet().stream().anyMatch(e -> consumer.position(e.getKey()) < e.getValue())) {
            poll(Duration.ofMillis(200));
        }
        return List.copyOf(events);
    }

    /** Until every one of {@code keys} has been encoded at least once; {@code check} runs between polls. */
    void awaitEncoded(List<String> keys, Duration timeout, Check check) throws Exception {
        long deadline = System.nanoTime() + timeout.toNanos();
        for (String key : keys) {
            while (events.stream().noneMatch(e -> e.getKind() == BlockEventKind.ENCODED
                    && e.getBlockKey().equals(key))) {
                check.run();
                if (System.nanoTime() > deadline) {
                    throw new AssertionError("block " + key + " never encoded");
                }
                poll(Duration.ofMillis(50));
            }
        }
    }

    /** How many times the block was encoded, of every event in the topic now. */
    int encodes(String key) throws java.io.IOException {
        return count(key, BlockEventKind.ENCODED);
    }

    /** How many events of this kind the block has, of every event in the topic now. */
    int count(String key, BlockEventKind kind) throws java.io.IOException {
        return (int) readToEnd().stream().filter(e -> e.getKind() == kind && e.getBlockKey().equals(key)).count();
    }

    /** The keys of the document's blocks (version 1) encoded at least once, in block order, of the topic now. */
    List<String> encodedBlocks(String docId) throws java.io.IOException {
        return readToEnd().stream().filter(e -> e.getKind() == BlockEventKind.ENCODED
                        && e.getDocId().equals(docId) && e.getVersion() == 1)
                .sorted(Comparator.comparingInt(BlockEvent::getBlock)).map(BlockEvent::getBlockKey).distinct()
                .toList();
    }

    @Override
    public void close() {
        consumer.close();
    }
}
