package org.starflink.benchmarks;

import java.io.IOException;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import org.apache.flink.core.execution.JobClient;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.starflink.operators.kafka.StrictAvroDecoder;
import org.starflink.schemas.BlockEvent;
import org.starflink.schemas.BlockEventKind;

/** The job's block-events topic, read from the beginning: when each block of a document was encoded. */
final class EncodedBlocks implements AutoCloseable {
    private final KafkaConsumer<byte[], byte[]> consumer;
    private final StrictAvroDecoder<BlockEvent> decoder = new StrictAvroDecoder<>(BlockEvent.class);
    /** Epoch millis of each block's (first) encode, by block key. */
    private final Map<String, Long> encodedMs = new HashMap<>();

    EncodedBlocks(String bootstrap, String topic) {
        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        consumer = new KafkaConsumer<>(props);
        List<TopicPartition> partitions = consumer.partitionsFor(topic).stream()
                .map(p -> new TopicPartition(topic, p.partition())).toList();
        consumer.assign(partitions);
        consumer.seekToBeginning(partitions);
    }

    /**
     * Waits until every one of {@code keys} is encoded; returns when the last of them was (epoch millis, the job's
     * clock: the time the block operator finished phase 1, not when this consumer saw it).
     */
    long awaitEncoded(List<String> keys, JobClient job, Duration timeout) throws Exception {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (!encodedMs.keySet().containsAll(keys)) {
            if (System.nanoTime() > deadline || job.getJobStatus().get().isGloballyTerminalState()) {
                throw new IllegalStateException(keys.stream().filter(k -> !encodedMs.containsKey(k)).count()
                        + " of " + keys.size() + " blocks never encoded (first: " + keys.stream()
                        .filter(k -> !encodedMs.containsKey(k)).findFirst().orElse("") + "); job "
                        + job.getJobStatus().get());
            }
            poll();
        }
        return keys.stream().mapToLong(encodedMs::get).max().orElseThrow();
    }

    private void poll() throws IOException {
        for (ConsumerRecord<byte[], byte[]> record : consumer.poll(Duration.ofMillis(20))) {
            BlockEvent event = decoder.decode(record.value());
            if (event.getKind() == BlockEventKind.ENCODED) {
                encodedMs.putIfAbsent(event.getBlockKey(), event.getEventMs());
                if (Boolean.getBoolean("starflink.bench.verbose")) {
                    System.err.printf("#   %s encoded at %d ms in %d ms%n", event.getBlockKey(),
                            event.getEventMs() % 100_000, event.getPhase1Ms());
                }
            }
        }
    }

    @Override
    public void close() {
        consumer.close();
    }
}
