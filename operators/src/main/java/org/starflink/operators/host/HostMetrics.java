package org.starflink.operators.host;

import java.util.concurrent.atomic.AtomicLong;
import org.apache.flink.metrics.Counter;
import org.apache.flink.metrics.Histogram;
import org.apache.flink.metrics.MetricGroup;
import org.apache.flink.runtime.metrics.DescriptiveStatisticsHistogram;

/** The query host's metrics, in the group starflink.host. Times in milliseconds, the layer round trip in microseconds. */
public final class HostMetrics {
    /** Every histogram of the group describes its last this many samples. */
    public static final int HISTOGRAM_WINDOW = 1000;
    private final AtomicLong inFlight = new AtomicLong();
    private final Counter questionsFinished;
    private final Counter stalePartials;
    private final Histogram timeToFirstTokenMs;
    private final Histogram timePerOutputTokenMs;
    private final Histogram layerRoundTripMicros;
    private final Histogram stateBytesPerToken;
    private final Histogram batchQuestions;
    private final Histogram layerMessages;

    HostMetrics(MetricGroup parent) {
        MetricGroup group = parent.addGroup("starflink").addGroup("host");
        group.gauge("questionsInFlight", inFlight::get);
        questionsFinished = group.counter("questionsFinished");
        stalePartials = group.counter("stalePartials");
        timeToFirstTokenMs = windowed(group, "timeToFirstTokenMs");
        timePerOutputTokenMs = windowed(group, "timePerOutputTokenMs");
        layerRoundTripMicros = windowed(group, "layerRoundTripMicros");
        stateBytesPerToken = windowed(group, "stateBytesPerToken");
        batchQuestions = windowed(group, "batchQuestions");
        layerMessages = windowed(group, "layerMessages");
    }

    void questionStarted() {
        inFlight.incrementAndGet();
    }

    void questionFinished() {
        inFlight.decrementAndGet();
        questionsFinished.inc();
    }

    void stalePartial() {
        stalePartials.inc();
    }

    void firstToken(long millis) {
        timeToFirstTokenMs.update(millis);
    }

    void outputToken(long nanos) {
        timePerOutputTokenMs.update(nanos / 1_000_000);
    }

    /** Keyed-state bytes one generated token's pass wrote (every layer: pass state + changed KV pages). */
    void stateBytesPerToken(long bytes) {
        stateBytesPerToken.update(bytes);
    }

    /** Questions whose rows one layer's requests carried (1 for a lone question). */
    void batchQuestions(int questions) {
        batchQuestions.update(questions);
    }

    /** Messages that brought one layer's partials back (one per block subtask that holds some of its blocks). */
    void layerMessages(int messages) {
        layerMessages.update(messages);
    }

    void layerRoundTrip(long nanos) {
        layerRoundTripMicros.update(nanos / 1_000);
    }

    private static Histogram windowed(MetricGroup group, String name) {
        return group.histogram(name, new DescriptiveStatisticsHistogram(HISTOGRAM_WINDOW));
    }
}
