package org.starflink.operators.kafka;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.connector.base.DeliveryGuarantee;
import org.apache.flink.connector.kafka.source.KafkaSource;
import org.apache.flink.connector.kafka.source.enumerator.initializer.OffsetsInitializer;
import org.apache.flink.connector.kafka.source.reader.deserializer.KafkaRecordDeserializationSchema;
import org.apache.flink.formats.avro.AvroDeserializationSchema;
import org.apache.flink.formats.avro.AvroSerializationSchema;
import org.apache.flink.formats.avro.typeutils.AvroTypeInfo;
import org.apache.flink.runtime.testutils.MiniClusterResourceConfiguration;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.datastream.SingleOutputStreamOperator;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.test.junit5.MiniClusterExtension;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.starflink.operators.cluster.LoopbackCluster;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.starflink.kafka.EmbeddedKafka;
import org.starflink.schemas.AnswerToken;
import org.starflink.schemas.DocumentChunk;
import org.starflink.schemas.DocumentDelete;
import org.starflink.schemas.DocumentEvent;
import org.starflink.schemas.FinishReason;
import org.starflink.schemas.RejectedRecord;
import org.starflink.schemas.Topics;

/** The wire types through an embedded Kafka broker with Flink's KafkaSource and KafkaSink. */
class AvroKafkaITCase {

    @RegisterExtension
    static final MiniClusterExtension MINI_CLUSTER = new MiniClusterExtension(
            new MiniClusterResourceConfiguration.Builder().setConfiguration(LoopbackCluster.apply(new Configuration()))
                    .setNumberTaskManagers(1).setNumberSlotsPerTaskManager(2)
                    .build());

    static EmbeddedKafka kafka;

    @BeforeAll
    static void startKafka() {
        kafka = EmbeddedKafka.builder().topic(Topics.ANSWERS, 2).topic(Topics.DOCUMENTS, 2).topic(Topics.REJECTED, 1)
                .start();
    }

    @AfterAll
    static void stopKafka() {
        if (kafka != null) {
            kafka.close();
        }
    }

    static StreamExecutionEnvironment env() {
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment(new Configuration());
        env.setParallelism(2);
        return env;
    }

    static AnswerToken token(String question, int index, boolean last) {
        return AnswerToken.newBuilder()
                .setQuestionId(question).setDocId("doc-" + question).setIndex(index).setTokenId(1000 + index)
                .setText(" t" + index).setFinal$(last).setFinishReason(last ? FinishReason.EOS : null)
                .setEmittedMs(1_700_000_000_000L + index).build();
    }

    @Test
    void avroRecordsRoundTripThroughKafkaSinkAndSource() throws Exception {
        List<AnswerToken> sent = new ArrayList<>();
        for (String q : List.of("q1", "q2", "q3")) {
            for (int i = 0; i < 5; i++) {
                sent.add(token(q, i, i == 4));
            }
        }
        StreamExecutionEnvironment writer = env();
        writer.fromData(AnswerToken.class, sent.toArray(new AnswerToken[0])).setParallelism(1)
                .sinkTo(AvroKafka.avroSink(kafka.bootstrapServers(), "answers", AnswerToken.class,
                        AnswerToken::getQuestionId, DeliveryGuarantee.AT_LEAST_ONCE, null))
                .setParallelism(1).uid("answers-sink").name("answers sink");
        writer.execute("write answers");

        StreamExecutionEnvironment reader = env();
        KafkaSource<AnswerToken> source = KafkaSource.<AnswerToken>builder()
                .setBootstrapServers(kafka.bootstrapServers())
                .setTopics("answers")
                .setGroupId("roundtrip")
                .setStartingOffsets(OffsetsInitializer.earliest())
                .setBounded(OffsetsInitializer.latest())
                .setDeserializer(KafkaRecordDeserializationSchema.valueOnly(
                        AvroDeserializationSchema.forSpecific(AnswerToken.class)))
                .build();
        DataStream<AnswerToken> answers = reader.fromSource(source, WatermarkStrategy.noWatermarks(), "answers")
                .uid("answers-source");
        assertTrue(answers.getType() instanceof AvroTypeInfo, "Flink should use its Avro serializer, not Kryo");
        List<AnswerToken> received = answers.executeAndCollect(100);

        assertEquals(sent.size(), received.size());
        // keyed by question id: one question's tokens share a partition, so their order survives
        Map<String, List<Integer>> order = new HashMap<>();
        for (AnswerToken t : received) {
            order.computeIfAbsent(t.getQuestionId(), q -> new ArrayList<>()).add(t.getIndex());
        }
        order.values().forEach(indices -> assertEquals(List.of(0, 1, 2, 3, 4), indices));
        assertTrue(received.containsAll(sent), "decoded records differ from the ones written");
    }

    @Test
    void undecodableBytesGoToTheRejectedTopicWithTheirOrigin() throws Exception {
        AvroSerializationSchema<DocumentEvent> ser = AvroSerializationSchema.forSpecific(DocumentEvent.class);
        ser.open(null);
        DocumentEvent chunk = DocumentEvent.newBuilder().setDocId("d1").setVersion(1)
                .setBody(DocumentChunk.newBuilder().setSeq(0).setText("Once upon a time").setLast(true).build())
                .build();
        DocumentEvent delete = DocumentEvent.newBuilder().setDocId("d2").setVersion(3)
                .setBody(DocumentDelete.newBuilder().build()).build();
        byte[] valid = ser.serialize(chunk);

        Map<String, byte[]> bad = new HashMap<>();
        bad.put("garbage", new byte[] {(byte) 0xff, (byte) 0xff, (byte) 0xff, (byte) 0xff, 0x01, 0x02});
        bad.put("text", "this is not avro at all".getBytes(StandardCharsets.UTF_8));
        bad.put("truncated", Arrays.copyOf(valid, valid.length - 3));
        byte[] trailing = Arrays.copyOf(valid, valid.length + 2);
        bad.put("trailing", trailing);
        bad.put("tombstone", null);
        bad.put("empty", new byte[0]);

        Map<String, RecordMetadata> badAt = new HashMap<>();
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers());
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class);
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class);
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p)) {
            producer.send(new ProducerRecord<>("documents", "d1".getBytes(StandardCharsets.UTF_8), valid)).get();
            for (Map.Entry<String, byte[]> e : bad.entrySet()) {
                badAt.put(e.getKey(), producer.send(new ProducerRecord<>("documents",
                        e.getKey().getBytes(StandardCharsets.UTF_8), e.getValue())).get());
            }
            producer.send(new ProducerRecord<>("documents", "d2".getBytes(StandardCharsets.UTF_8),
                    ser.serialize(delete))).get();
        }

        StreamExecutionEnvironment env = env();
        DataStream<KafkaRawRecord> raw = env.fromSource(
                AvroKafka.rawSource(kafka.bootstrapServers(), "documents", "decoder", OffsetsInitializer.earliest(),
                        OffsetsInitializer.latest()),
                WatermarkStrategy.noWatermarks(), "documents").uid("documents-source");
        SingleOutputStreamOperator<DocumentEvent> decoded = AvroKafka.decode(raw, DocumentEvent.class, "decode-docs");
        decoded.getSideOutput(DecodeOrReject.REJECTED)
                .sinkTo(AvroKafka.avroSink(kafka.bootstrapServers(), "rejected", RejectedRecord.class,
                        r -> r.getSourceTopic() + "/" + r.getSourcePartition(), DeliveryGuarantee.AT_LEAST_ONCE,
                        null))
                .uid("rejected-sink").name("rejected sink");
        List<DocumentEvent> good = decoded.executeAndCollect(100);

        assertEquals(2, good.size(), "decoded: " + good);
        assertTrue(good.contains(chunk) && good.contains(delete), "decoded: " + good);

        AvroDeserializationSchema<RejectedRecord> de = AvroDeserializationSchema.forSpecific(RejectedRecord.class);
        de.open(null);
        Map<String, RejectedRecord> rejectedByOrigin = new HashMap<>();
        Properties c = new Properties();
        c.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers());
        c.put(ConsumerConfig.GROUP_ID_CONFIG, "verifier");
        c.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        try (KafkaConsumer<byte[], byte[]> consumer =
                new KafkaConsumer<>(c, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            consumer.subscribe(List.of("rejected"));
            long deadline = System.currentTimeMillis() + 30_000;
            while (rejectedByOrigin.size() < bad.size() && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(200))) {
                    RejectedRecord rejected = de.deserialize(r.value());
                    assertNull(rejectedByOrigin.put(rejected.getSourcePartition() + "@" + rejected.getSourceOffset(),
                            rejected), "rejected twice: " + rejected);
                }
            }
        }
        assertEquals(bad.size(), rejectedByOrigin.size(), "rejected: " + rejectedByOrigin.keySet());
        for (Map.Entry<String, RecordMetadata> e : badAt.entrySet()) {
            RejectedRecord r = rejectedByOrigin.get(e.getValue().partition() + "@" + e.getValue().offset());
            assertNotNull(r, e.getKey() + " was not rejected");
            assertEquals("documents", r.getSourceTopic());
            assertArrayEquals(e.getKey().getBytes(StandardCharsets.UTF_8), bytes(r.getRawKey()));
            assertArrayEquals(bad.get(e.getKey()), bytes(r.getRawValue()), e.getKey() + ": raw bytes");
            assertTrue(r.getReason().startsWith("cannot decode DocumentEvent"), r.getReason());
            System.out.printf("rejected %-9s -> %s%n", e.getKey(), r.getReason());
        }
    }

    static byte[] bytes(ByteBuffer buffer) {
        if (buffer == null) {
            return null;
        }
        byte[] b = new byte[buffer.remaining()];
        buffer.duplicate().get(b);
        return b;
    }
}
