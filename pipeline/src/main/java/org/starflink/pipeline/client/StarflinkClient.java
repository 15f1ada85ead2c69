package org.starflink.pipeline.client;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Properties;
import java.util.UUID;
import java.util.function.Consumer;
import java.util.function.IntConsumer;
import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.EncoderFactory;
import org.apache.avro.specific.SpecificDatumWriter;
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
import org.starflink.schemas.AnswerToken;
import org.starflink.schemas.DocumentChunk;
import org.starflink.schemas.DocumentEvent;
import org.starflink.schemas.Question;
import org.starflink.schemas.Topics;

/**
 * What a user of the job does with Kafka: stream a document in as chunks, ask a question and follow its answer
 * token by token. Used by {@code starflink ingest}, {@code starflink ask} and the demo of {@code starflink run}.
 */
public final class StarflinkClient implements AutoCloseable {
    private final String bootstrapServers;
    private final TopicNames topics;
    private final KafkaProducer<byte[], byte[]> producer;

    /** The names of the topics the job reads and writes. */
    public record TopicNames(String documents, String questions, String answers, String rejected) {
        public static TopicNames defaults() {
            return new TopicNames(Topics.DOCUMENTS, Topics.QUESTIONS, Topics.ANSWERS, Topics.REJECTED);
        }
    }

    public StarflinkClient(String bootstrapServers, TopicNames topics) {
        this.bootstrapServers = bootstrapServers;
        this.topics = topics;
        Properties props = new Properties();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrapServers);
        props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        props.put(ProducerConfig.ACKS_CONFIG, "all");
        props.put(ProducerConfig.LINGER_MS_CONFIG, "0");
        props.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "15000");
        this.producer = new KafkaProducer<>(props);
    }

    /**
     * Sends a document as chunks of about {@code chunkChars} characters (split at whitespace where possible),
     * in order, the last one marked last.
     *
     * @param onChunk called with the number of chunks sent so far
     */
    public int sendDocument(String docId, long version, String text, int chunkChars, IntConsumer onChunk) {
        List<String> chunks = split(text, chunkChars);
        for (int seq = 0; seq < chunks.size(); seq++) {
            DocumentEvent event = DocumentEvent.newBuilder().setDocId(docId).setVersion(version)
                    .setBody(DocumentChunk.newBuilder().setSeq(seq).setText(chunks.get(seq))
                            .setLast(seq == chunks.size() - 1).build())
                    .build();
            send(topics.documents(), docId, event);
            onChunk.accept(seq + 1);
        }
        producer.flush();
        return chunks.size();
    }

    static List<String> split(String text, int chunkChars) {
        java.util.ArrayList<String> chunks = new java.util.ArrayList<>();
        int start = 0;
        while (start < text.length()) {
            int end = Math.min(text.length(), start + chunkChars);
            int space = text.lastIndexOf(' ', end);
            if (end < text.length() && space > start) {
                end = space + 1;
            }
            chunks.add(text.substring(start, end));
            start = end;
        }
        if (chunks.isEmpty()) {
            chunks.add("");
        }
        return chunks;
    }

    /**
     * Asks a question and follows its answer until the final record; returns that record. The answers topic is
     * subscribed at its end before the question is sent, so no token is missed.
     *
     * @param onToken called with every answer record, in index order, duplicates (at-least-once replays) skipped
     */
    public AnswerToken ask(Question question, Consumer<AnswerToken> onToken, Duration timeout) {
        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrapServers);
        props.put(ConsumerConfig.GROUP_ID_CONFIG, "starflink-ask-" + UUID.randomUUID());
        props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "latest");
        props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        StrictAvroDecoder<AnswerToken> decoder = new StrictAvroDecoder<>(AnswerToken.class);
        byte[] key = question.getQuestionId().getBytes(StandardCharsets.UTF_8);
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(props)) {
            consumer.subscribe(List.of(topics.answers()));
            long deadline = System.nanoTime() + timeout.toNanos();
            while (consumer.assignment().isEmpty()) {
                consumer.poll(Duration.ofMillis(100));
                if (System.nanoTime() > deadline) {
                    throw new IllegalStateException("no partition of topic " + topics.answers() + " assigned");
                }
            }
            consumer.seekToEnd(consumer.assignment());
            consumer.assignment().forEach(consumer::position); // resolve the end offsets now
            send(topics.questions(), question.getQuestionId(), question);
            producer.flush();
            int nextIndex = 0;
            while (System.nanoTime() < deadline) {
                for (ConsumerRecord<byte[], byte[]> record : consumer.poll(Duration.ofMillis(50))) {
                    if (record.key() == null || !java.util.Arrays.equals(record.key(), key)) {
                        continue;
                    }
                    AnswerToken token = decoder.decode(record.value());
                    if (token.getIndex() != nextIndex) {
                        continue; // a replayed duplicate
                    }
                    nextIndex++;
                    onToken.accept(token);
                    if (token.getFinal$()) {
                        return token;
                    }
                }
            }
            throw new IllegalStateException("no final answer for " + question.getQuestionId() + " within "
                    + timeout.toSeconds() + " s");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private <T extends SpecificRecord> void send(String topic, String key, T record) {
        producer.send(new ProducerRecord<>(topic, key.getBytes(StandardCharsets.UTF_8), encode(record)));
    }

    public static <T extends SpecificRecord> byte[] encode(T record) {
        try {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            BinaryEncoder encoder = EncoderFactory.get().binaryEncoder(out, null);
            @SuppressWarnings("unchecked")
            SpecificDatumWriter<T> writer = new SpecificDatumWriter<>((Class<T>) record.getClass());
            writer.write(record, encoder);
            encoder.flush();
            return out.toByteArray();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @Override
    public void close() {
        producer.close(Duration.ofSeconds(5));
    }
}
