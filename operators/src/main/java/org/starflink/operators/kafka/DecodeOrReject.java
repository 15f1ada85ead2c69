package org.starflink.operators.kafka;

import java.nio.ByteBuffer;
import org.apache.avro.specific.SpecificRecord;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.java.typeutils.ResultTypeQueryable;
import org.apache.flink.formats.avro.typeutils.AvroTypeInfo;
import org.apache.flink.metrics.Counter;
import org.apache.flink.streaming.api.functions.ProcessFunction;
import org.apache.flink.util.Collector;
import org.apache.flink.util.OutputTag;
import org.starflink.schemas.RejectedRecord;

/**
 * Decodes {@link KafkaRawRecord}s into an Avro type; a record that cannot be decoded, or that breaks its topic's
 * {@link WireContract}, goes to the {@link #REJECTED} side output with its topic, partition, offset, bytes and the
 * reason, and the job carries on.
 */
public final class DecodeOrReject<T extends SpecificRecord> extends ProcessFunction<KafkaRawRecord, T>
        implements ResultTypeQueryable<T> {

    private static final long serialVersionUID = 1L;

    /** Input records that could not be processed, for the 'rejected' topic. */
    public static final OutputTag<RejectedRecord> REJECTED =
            new OutputTag<>("rejected", new AvroTypeInfo<>(RejectedRecord.class));

    public static final String METRIC_REJECTED = "rejectedRecords";

    private final StrictAvroDecoder<T> decoder;
    private final WireContract.Check<T> contract;
    private transient Counter rejected;

    public DecodeOrReject(Class<T> type) {
        this.decoder = new StrictAvroDecoder<>(type);
        this.contract = WireContract.of(type);
    }

    @Override
    public void open(OpenContext context) {
        rejected = getRuntimeContext().getMetricGroup().counter(METRIC_REJECTED);
    }

    @Override
    public void processElement(KafkaRawRecord raw, Context ctx, Collector<T> out) {
        T value;
        try {
            value = decoder.decode(raw.value());
        } catch (Exception e) {
            rejected.inc();
            String why = e instanceof java.io.EOFException ? "input ends inside the record"
                    : e.getMessage() != null ? e.getMessage() : e.getClass().getName();
            ctx.output(REJECTED, rejection(raw, "cannot decode " + decoder.type().getSimpleName() + ": " + why));
            return;
        }
        String problem = contract.problem(raw.key(), value);
        if (problem != null) {
            rejected.inc();
            ctx.output(REJECTED, rejection(raw, "invalid " + decoder.type().getSimpleName() + ": " + problem));
            return;
        }
        out.collect(value);
    }

    /** A {@link RejectedRecord} for {@code raw}; other operators use it for records they cannot process. */
    public static RejectedRecord rejection(KafkaRawRecord raw, String reason) {
        return RejectedRecord.newBuilder()
                .setSourceTopic(raw.topic())
                .setSourcePartition(raw.partition())
                .setSourceOffset(raw.offset())
                .setSourceTimestamp(raw.timestamp())
                .setRawKey(raw.key() == null ? null : ByteBuffer.wrap(raw.key()))
                .setRawValue(raw.value() == null ? null : ByteBuffer.wrap(raw.value()))
                .setReason(reason == null ? "unknown" : reason)
                .setRejectedMs(System.currentTimeMillis())
                .build();
    }

    @Override
    public TypeInformation<T> getProducedType() {
        return TypeInformation.of(decoder.type()); // AvroTypeInfo for generated classes, never Kryo
    }
}
