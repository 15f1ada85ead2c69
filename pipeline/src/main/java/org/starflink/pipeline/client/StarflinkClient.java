package org.starflink.pipeline.client;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.UUID;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Consumer;
import java.util.function.IntConsumer;
import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.EncoderFactory;
import org.apache.avro.specific.SpecificDatumWriter;
import org.apache.avro.specific.SpecificRecord;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.starflink.operators.kafka.StrictAvroDecoder;
import org.starflink.schemas.AnswerToken;
import org.starflink.schemas.DocumentChunk;
import org.starflink.schemas.DocumentDelete;
import org.starflink.schemas.DocumentEvent;
import org.starflink.schemas.Question;
import org.starflink.schemas.Topics;

/**
 * What a user of the job does with Kafka: stream a document in as chunks, delete it, ask a question and follow
 * its answer token by token. Used by {@code starflink ingest}, {@code delete}, {@code ask} and the demo of
 * {@code starflink run}.
 *
 * <p>Nothing is lost silently and nothing waits unboundedly: before the first record the client checks that a
 * broker answers and that the topic exists ({@link #KAFKA_TIMEOUT} at most), every record sent is confirmed by
 * the broker, and a failure ends in a {@link KafkaUnavailableException} naming the broker and the cause.
 */
public final class StarflinkClient implements AutoCloseable {
    /** The longest the client waits for Kafka itself: connecting, metadata, one send's confirmation. */
    public static final Duration KAFKA_TIMEOUT = Duration.ofSeconds(10);

    private final String bootstrapServers;
    private final TopicNames topics;
    private KafkaProducer<byte[], byte[]> producer;

    /** The names of the topics the job reads and writes. */
    public record TopicNames(String documents, String questions, String answers, String rejected) {
        public static TopicNames defaults() {
            return new TopicNames(Topics.DOCUMENTS, Topics.QUESTIONS, Topics.ANSWERS, Topics.REJECTED);
        }
    }

    public StarflinkClient(String bootstrapServers, TopicNames topics) {
        this.bootstrapServers = bootstrapServers;
        this.topics = topics;
    }

    /**
     * Sends a document as chunks of about {@code chunkChars} characters (split at whitespace where possible),
     * in order, the last one marked last, and waits until the broker confirmed every one.
     *
     * @param onChunk called with the number of chunks confirmed so far
     * @return the number of chunks
     * @throws KafkaUnavailableException if the broker cannot be reached or does not confirm a chunk
     */
    public int sendDocument(String docId, long version, String text, int chunkChars, IntConsumer onChunk) {
        List<String> chunks = chunks(text, chunkChars);
        sendDocument(docId, version, chunks, onChunk);
        return chunks.size();
    }

    /** As {@link #sendDocument(String, long, String, int, IntConsumer)}, with the chunks already cut. */
    public void sendDocument(String docId, long version, List<String> chunks, IntConsumer onChunk) {
        List<Future<RecordMetadata>> sent = new ArrayList<>();
        for (int seq = 0; seq < chunks.size(); seq++) {
            DocumentEvent event = DocumentEvent.newBuilder().setDocId(docId).setVersion(version)
                    .setBody(DocumentChunk.newBuilder().setSeq(seq).setText(chunks.get(seq))
                            .setLast(seq == chunks.size() - 1).build())
                    .build();
            sent.add(send(topics.documents(), docId, event));
        }
        for (int i = 0; i < sent.size(); i++) {
            confirm(sent.get(i), topics.documents());
            onChunk.accept(i + 1);
        }
    }

    /** Deletes every version of the document up to and including {@code version}; confirmed by the broker. */
    public void deleteDocument(String docId, long version, String reason) {
        DocumentEvent event = DocumentEvent.newBuilder().setDocId(docId).setVersion(version)
                .setBody(DocumentDelete.newBuilder().setReason(reason).build()).build();
        confirm(send(topics.documents(), docId, event), topics.documents());
    }

    /** The text in chunks of about {@code chunkChars} characters, split at whitespace where possible. */
    public static List<String> chunks(String text, int chunkChars) {
        List<String> chunks = new ArrayList<>();
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
     * read from its end, as it was before the question was sent, so no token is missed.
     *
     * @param onToken called with every answer record, in index order, duplicates (at-least-once replays) skipped
     * @param timeout for the whole question, from sending to the final record
     * @throws ClientTimeoutException if the final record does not arrive within {@code timeout}
     */
    public AnswerToken ask(Question question, Consumer<AnswerToken> onToken, Duration timeout) {
        return ask(question, () -> { }, onToken, timeout);
    }

    /** As {@link #ask(Question, Consumer, Duration)}; {@code onSent} runs once the broker confirmed the question. */
    public AnswerToken ask(Question question, Runnable onSent, Consumer<AnswerToken> onToken, Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        StrictAvroDecoder<AnswerToken> decoder = new StrictAvroDecoder<>(AnswerToken.class);
        byte[] key = question.getQuestionId().getBytes(StandardCharsets.UTF_8);
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(consumerProperties())) {
            checkTopicExists(topics.answers());
            List<TopicPartition> partitions = new ArrayList<>();
            for (PartitionInfo partition : consumer.partitionsFor(topics.answers(), KAFKA_TIMEOUT)) {
                partitions.add(new TopicPartition(partition.topic(), partition.partition()));
            }
            consumer.assign(partitions); // no consumer group: nothing to join, nothing left behind
            consumer.seekToEnd(partitions);
            partitions.forEach(p -> consumer.position(p, KAFKA_TIMEOUT)); // the end offsets, before the question
            confirm(send(topics.questions(), question.getQuestionId(), question), topics.questions());
            onSent.run();
            int nextIndex = 0;
            while (System.nanoTime() < deadline) {
                for (ConsumerRecord<byte[], byte[]> record : consumer.poll(Duration.ofMillis(50))) {
                    if (record.key() == null || !Arrays.equals(record.key(), key)) {
                        continue;
                    }
                    AnswerToken token;
                    try {
                        token = decoder.decode(record.value());
                    } catch (IOException notAnAnswer) {
                        continue; // not written by the job; the answer, if any, still comes
                    }
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
            throw new ClientTimeoutException("no " + (nextIndex == 0 ? "answer" : "final answer record") + " to "
                    + "question " + question.getQuestionId() + " within " + timeout.toSeconds() + " s"
                    + (nextIndex == 0 ? " (is a starflink job reading topic " + topics.questions() + " at "
                    + bootstrapServers + "?)" : " (" + nextIndex + " tokens so far)"));
        } catch (KafkaException e) {
            throw unavailable("reading " + topics.answers(), e);
        }
    }

    /**
     * Waits until the job has the whole document encoded: asks it a one-token probe question that waits for the
     * document to be complete (a question is answered once every block it covers is encoded), and returns the
     * probe's final record: its coverage says how many blocks and tokens the document has, or its error why the
     * document cannot be answered (empty, beyond the model's window, still incomplete after {@code timeout}).
     */
    public AnswerToken awaitDocument(String docId, Duration timeout) {
        Question probe = Question.newBuilder().setQuestionId("ingest-probe-" + UUID.randomUUID()).setDocId(docId)
                .setText("?").setMaxNewTokens(1).setWaitCompleteMs(Math.max(1, timeout.toMillis())).build();
        return ask(probe, token -> { }, timeout.plus(KAFKA_TIMEOUT)); // the job's own "still incomplete" first
    }

    private Properties consumerProperties() {
        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrapServers);
        props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        props.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, String.valueOf(KAFKA_TIMEOUT.toMillis()));
        props.put(ConsumerConfig.REQUEST_TIMEOUT_MS_CONFIG, String.valueOf(KAFKA_TIMEOUT.toMillis()));
        return props;
    }

    private <T extends SpecificRecord> Future<RecordMetadata> send(String topic, String key, T record) {
        try {
            return producer(topic).send(new ProducerRecord<>(topic, key.getBytes(StandardCharsets.UTF_8),
                    encode(record)));
        } catch (KafkaException e) {
            throw unavailable("sending to " + topic, e);
        }
    }

    /** Waits for the broker's confirmation of one record (its send is bounded by the producer's timeouts). */
    private void confirm(Future<RecordMetadata> sent, String topic) {
        try {
            sent.get(DELIVERY_TIMEOUT.toMillis() + 1000, TimeUnit.MILLISECONDS);
        } catch (ExecutionException e) {
            throw unavailable("sending to " + topic, e.getCause());
        } catch (TimeoutException e) {
            throw unavailable("sending to " + topic, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw unavailable("sending to " + topic, e);
        }
    }

    /** The producer, created once the broker answered and {@code topic} exists. */
    private KafkaProducer<byte[], byte[]> producer(String topic) {
        if (producer == null) {
            checkTopicExists(topic);
            Properties props = new Properties();
            props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrapServers);
            props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
            props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
            props.put(ProducerConfig.ACKS_CONFIG, "all");
            props.put(ProducerConfig.LINGER_MS_CONFIG, "0");
            props.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, String.valueOf(KAFKA_TIMEOUT.toMillis()));
            props.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, String.valueOf(KAFKA_TIMEOUT.toMillis()));
            props.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, String.valueOf(DELIVERY_TIMEOUT.toMillis()));
            producer = new KafkaProducer<>(props);
        }
        return producer;
    }

    /** A record is given up (and reported) this long after it was sent: one request timeout and retries. */
    private static final Duration DELIVERY_TIMEOUT = KAFKA_TIMEOUT.multipliedBy(2);

    /**
     * Fails fast with the cause when no broker of {@code bootstrap.servers} accepts a connection (a plain TCP
     * connect: Kafka's own clients retry silently until their timeouts), then asks the broker for the topic.
     */
    private void checkTopicExists(String topic) {
        checkReachable();
        try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrapServers,
                AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, (int) KAFKA_TIMEOUT.toMillis(),
                AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, (int) KAFKA_TIMEOUT.toMillis()))) {
            admin.describeTopics(List.of(topic)).allTopicNames().get(KAFKA_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof UnknownTopicOrPartitionException) {
                throw new KafkaUnavailableException("topic " + topic + " does not exist at " + bootstrapServers
                        + " (is this the job's Kafka? is --topic-prefix right?)");
            }
            throw unavailable("looking up topic " + topic, e.getCause());
        } catch (TimeoutException e) {
            throw new KafkaUnavailableException("Kafka at " + bootstrapServers + " did not answer within "
                    + KAFKA_TIMEOUT.toSeconds() + " s");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw unavailable("looking up topic " + topic, e);
        }
    }

    /**
     * Checks that a broker answers and every one of {@code names} exists: what a job attached to this Kafka needs
     * before it starts (its sources would otherwise retry forever).
     */
    public void requireTopics(List<String> names) {
        names.forEach(this::checkTopicExists);
    }

    private void checkReachable() {
        String lastProblem = "no address";
        for (String address : bootstrapServers.split(",")) {
            String hostPort = address.strip();
            int colon = hostPort.lastIndexOf(':');
            if (colon < 1) {
                throw new KafkaUnavailableException("bad Kafka address '" + hostPort + "': need HOST:PORT");
            }
            try (Socket socket = new Socket()) {
                socket.connect(new InetSocketAddress(hostPort.substring(0, colon),
                        Integer.parseInt(hostPort.substring(colon + 1))), (int) Duration.ofSeconds(3).toMillis());
                return;
            } catch (NumberFormatException e) {
                throw new KafkaUnavailableException("bad Kafka address '" + hostPort + "': need HOST:PORT");
            } catch (IOException e) {
                lastProblem = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
            }
        }
        throw new KafkaUnavailableException("cannot reach Kafka at " + bootstrapServers + ": " + lastProblem);
    }

    private KafkaUnavailableException unavailable(String what, Throwable cause) {
        String reason = cause.getMessage() == null ? cause.getClass().getSimpleName() : cause.getMessage();
        return new KafkaUnavailableException(what + " at " + bootstrapServers + " failed: "
                + reason.lines().findFirst().orElse(reason));
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
        if (producer != null) {
            producer.close(Duration.ofSeconds(5));
        }
    }
}
