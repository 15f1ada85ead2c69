package org.starflink.it;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.UUID;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.starflink.operators.kafka.StrictAvroDecoder;
import org.starflink.schemas.AnswerToken;

/**
 * Reads an answers topic from the beginning, continuously, on a thread of its own, as a consumer of the job would;
 * it rides out a broker restart (the consumer reconnects by itself). Keeps every record, duplicates included, with
 * the wall-clock time it arrived.
 */
final class AnswerWatcher implements AutoCloseable {
    record Received(AnswerToken token, long arrivedMs) {
    }

    private final List<Received> received = new ArrayList<>();
    private final Thread thread;
    private volatile boolean stop;

    AnswerWatcher(String bootstrap, String topic) {
        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ConsumerConfig.GROUP_ID_CONFIG, "watcher-" + UUID.randomUUID());
        props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        StrictAvroDecoder<AnswerToken> decoder = new StrictAvroDecoder<>(AnswerToken.class);
        thread = new Thread(() -> {
            try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(props)) {
                consumer.subscribe(List.of(topic));
                while (!stop) {
                    for (ConsumerRecord<byte[], byte[]> record : consumer.poll(Duration.ofMillis(200))) {
                        AnswerToken token;
                        try {
                            token = decoder.decode(record.value());
                        } catch (java.io.IOException e) {
                            throw new java.io.UncheckedIOException("undecodable answer record", e);
                        }
                        synchronized (received) {
                            received.add(new Received(token, System.currentTimeMillis()));
                        }
                    }
                }
            }
        }, "answers-" + topic);
        thread.setDaemon(true);
        thread.start();
    }

    List<Received> received() {
        synchronized (received) {
            return List.copyOf(received);
        }
    }

    List<AnswerToken> tokens() {
        return received().stream().map(Received::token).toList();
    }

    long finals() {
        return tokens().stream().filter(AnswerToken::getFinal$).map(AnswerToken::getQuestionId).distinct().count();
    }

    /** Records whose (question_id, index) came before: the at-least-once replays. */
    long duplicates() {
        Map<String, Integer> seen = new HashMap<>();
        long duplicates = 0;
        for (AnswerToken token : tokens()) {
            if (seen.merge(token.getQuestionId() + "#" + token.getIndex(), 1, Integer::sum) > 1) {
                duplicates++;
            }
        }
        return duplicates;
    }

    Map<String, List<AnswerToken>> byQuestion() {
        Map<String, List<AnswerToken>> byQuestion = new LinkedHashMap<>();
        for (AnswerToken token : tokens()) {
            byQuestion.computeIfAbsent(token.getQuestionId(), k -> new ArrayList<>()).add(token);
        }
        return byQuestion;
    }

    @Override
    public void close() throws InterruptedException {
        stop = true;
        thread.join(10_000);
    }
}
