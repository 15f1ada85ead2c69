package org.starflink.benchmarks;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.UUID;
import java.util.concurrent.Future;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.starflink.operators.kafka.StrictAvroDecoder;
import org.starflink.pipeline.client.StarflinkClient;
import org.starflink.schemas.AnswerToken;
import org.starflink.schemas.Question;

/** Sends questions at once (greedy) and reads every answer token back through one consumer. */
final class Asker implements AutoCloseable {
    /**
     * One question as the consumer saw it: {@code id} is its prompt; TTFT from its record's Kafka timestamp to its
     * first answer record; the arrival of its first and last answer records (System.nanoTime).
     */
    record Answer(String id, long ttftMs, List<Integer> tokens, long firstNanos, long lastNanos) {
        /** Question record's Kafka timestamp -> its final answer record at the consumer. */
        long answerMs() {
            return ttftMs + (lastNanos - firstNanos) / 1_000_000;
        }
    }

    private final StarflinkClient.TopicNames topics;
    private final int maxNewTokens;
    private final KafkaProducer<byte[], byte[]> producer;
    private final KafkaConsumer<byte[], byte[]> consumer;
    private final StrictAvroDecoder<AnswerToken> answers = new StrictAvroDecoder<>(AnswerToken.class);

    Asker(String bootstrap, StarflinkClient.TopicNames topics, int maxNewTokens) {
        this.topics = topics;
        this.maxNewTokens = maxNewTokens;
        Properties producerProps = new Properties();
        producerProps.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        producerProps.put(ProducerConfig.LINGER_MS_CONFIG, "0");
        producer = new KafkaProducer<>(producerProps, new ByteArraySerializer(), new ByteArraySerializer());
        Properties consumerProps = new Properties();
        consumerProps.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        consumer = new KafkaConsumer<>(consumerProps, new ByteArrayDeserializer(), new ByteArrayDeserializer());
        List<TopicPartition> partitions = consumer.partitionsFor(topics.answers()).stream()
                .map(p -> new TopicPartition(topics.answers(), p.partition())).toList();
        consumer.assign(partitions);
        consumer.seekToEnd(partitions);
        partitions.forEach(consumer::position);
    }

    /** The prompts about one document; see {@link #askAll(List, List, String)}. */
    List<Answer> askAll(String docId, List<String> prompts, String tag) throws Exception {
        return askAll(Collections.nCopies(prompts.size(), docId), prompts, tag);
    }

    /** Question i is {@code prompts[i]} about {@code docIds[i]}; question ids are {@code tag}-i-random. */
    List<Answer> askAll(List<String> docIds, List<String> prompts, String tag) throws Exception {
        Map<String, String> promptOf = new HashMap<>();
        Map<String, Future<RecordMetadata>> sent = new HashMap<>();
        for (int q = 0; q < prompts.size(); q++) {
            String id = tag + "-" + q + "-" + UUID.randomUUID().toString().substring(0, 6);
            promptOf.put(id, prompts.get(q));
            Question question = Question.newBuilder().setQuestionId(id).setDocId(docIds.get(q))
                    .setText(prompts.get(q)).setMaxNewTokens(maxNewTokens).setTemperature(0f).setTopP(1f)
                    .setSeed(0).setStop(List.of()).build();
            sent.put(id, producer.send(new ProducerRecord<>(topics.questions(),
                    id.getBytes(StandardCharsets.UTF_8), StarflinkClient.encode(question))));
        }
        producer.flush();
        Map<String, List<Integer>> tokens = new HashMap<>();
        Map<String, long[]> times = new HashMap<>(); // first ms, first nanos, last nanos
        int finished = 0;
        long deadline = System.nanoTime() + Duration.ofMinutes(20).toNanos();
        while (finished < prompts.size()) {
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException(finished + " of " + prompts.size() + " answers in 20 minutes");
            }
            for (ConsumerRecord<byte[], byte[]> record : consumer.poll(Duration.ofMillis(5))) {
                AnswerToken token = answers.decode(record.value());
                String id = token.getQuestionId();
                if (!promptOf.containsKey(id)) {
                    continue;
                }
                if (token.getError() != null) {
                    throw new IllegalStateException("question " + id + " failed: " + token.getError());
                }
                long now = System.nanoTime();
                long[] t = times.computeIfAbsent(id, k -> new long[] {System.currentTimeMillis(), now, now});
                t[2] = now;
                tokens.computeIfAbsent(id, k -> new ArrayList<>()).add(token.getTokenId());
                if (token.getFinal$()) {
                    finished++;
                }
            }
        }
        List<Answer> result = new ArrayList<>();
        for (Map.Entry<String, String> e : promptOf.entrySet()) {
            long[] t = times.get(e.getKey());
            long sentMs = sent.get(e.getKey()).get().timestamp();
            result.add(new Answer(e.getValue(), t[0] - sentMs, tokens.get(e.getKey()), t[1], t[2]));
        }
        return result;
    }

    @Override
    public void close() {
        producer.close();
        consumer.close();
    }
}
