package org.starflink.kafka;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class EmbeddedKafkaTest {

    @Test
    void startsCreatesTopicsServesAndDeletesItsOwnDataDir() throws Exception {
        Path dir;
        long t0 = System.nanoTime();
        try (EmbeddedKafka kafka = EmbeddedKafka.builder().topic("in", 2).topic("out", 1).start()) {
            System.out.printf("embedded Kafka up at %s in %.1fs%n", kafka.bootstrapServers(), (System.nanoTime() - t0) / 1e9);
            dir = kafka.dataDir();
            try (Admin admin = Admin.create(Map.of("bootstrap.servers", kafka.bootstrapServers()))) {
                assertEquals(Set.of("in", "out"), admin.listTopics().names().get());
                assertEquals(2, admin.describeTopics(List.of("in")).allTopicNames().get().get("in").partitions().size());
            }
            assertEquals(List.of("v0", "v1", "v2"), roundTrip(kafka.bootstrapServers(), "in", 3));
        }
        assertFalse(Files.exists(dir), "own data dir not deleted");
    }

    @Test
    void keepsAGivenDataDirAcrossRestarts(@TempDir Path dir) throws Exception {
        try (EmbeddedKafka kafka = EmbeddedKafka.builder().dataDir(dir).topic("kept", 1).start()) {
            roundTrip(kafka.bootstrapServers(), "kept", 2);
        }
        assertTrue(Files.exists(dir.resolve("meta.properties")), "data dir was not formatted");
        // second start: formatting is skipped, the topic and its records are still there (on new ports)
        try (EmbeddedKafka kafka = EmbeddedKafka.builder().dataDir(dir).topic("kept", 1).start()) {
            assertEquals(List.of("v0", "v1", "v0", "v1", "v2"), roundTrip(kafka.bootstrapServers(), "kept", 3));
        }
    }

    @Test
    void autoCreationIsOff() throws Exception {
        try (EmbeddedKafka kafka = EmbeddedKafka.builder().start()) {
            Properties p = producerProps(kafka.bootstrapServers());
            p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "1500");
            try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
                ExecutionException e = assertThrows(ExecutionException.class,
                        () -> producer.send(new ProducerRecord<>("typo", "x")).get());
                System.out.println("send to a missing topic: " + e.getCause());
            }
        }
    }

    static Properties producerProps(String bootstrap) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class);
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class);
        return p;
    }

    /** Writes v0..v(n-1) to partition 0 and reads the partition from the start. */
    static List<String> roundTrip(String bootstrap, String topic, int n) throws Exception {
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(producerProps(bootstrap))) {
            for (int i = 0; i < n; i++) {
                producer.send(new ProducerRecord<>(topic, 0, "k", "v" + i)).get();
            }
        }
        Properties c = new Properties();
        c.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        c.put(ConsumerConfig.GROUP_ID_CONFIG, "reader-" + System.nanoTime());
        c.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        List<String> values = new ArrayList<>();
        try (KafkaConsumer<String, String> consumer =
                new KafkaConsumer<>(c, new StringDeserializer(), new StringDeserializer())) {
            consumer.assign(List.of(new org.apache.kafka.common.TopicPartition(topic, 0)));
            consumer.seekToBeginning(consumer.assignment());
            long end = consumer.endOffsets(consumer.assignment()).values().iterator().next();
            long deadline = System.currentTimeMillis() + 30_000;
            while (consumer.position(new org.apache.kafka.common.TopicPartition(topic, 0)) < end
                    && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) {
                    values.add(new String(r.value().getBytes(StandardCharsets.UTF_8), StandardCharsets.UTF_8));
                }
            }
        }
        return values;
    }
}
