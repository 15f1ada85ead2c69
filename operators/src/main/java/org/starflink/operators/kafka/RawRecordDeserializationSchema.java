package org.starflink.operators.kafka;

import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.connector.kafka.source.reader.deserializer.KafkaRecordDeserializationSchema;
import org.apache.flink.util.Collector;
import org.apache.kafka.clients.consumer.ConsumerRecord;

/** Passes every Kafka record through as a {@link KafkaRawRecord}. Cannot fail on content. */
public final class RawRecordDeserializationSchema implements KafkaRecordDeserializationSchema<KafkaRawRecord> {

    private static final long serialVersionUID = 1L;

    @Override
    public void deserialize(ConsumerRecord<byte[], byte[]> record, Collector<KafkaRawRecord> out) {
        out.collect(new KafkaRawRecord(record.topic(), record.partition(), record.offset(),
                record.timestamp() >= 0 ? record.timestamp() : -1, record.key(), record.value()));
    }

    @Override
    public TypeInformation<KafkaRawRecord> getProducedType() {
        return Types.POJO(KafkaRawRecord.class);
    }
}
