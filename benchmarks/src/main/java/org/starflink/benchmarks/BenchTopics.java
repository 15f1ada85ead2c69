package org.starflink.benchmarks;

import java.util.Map;
import org.apache.flink.configuration.Configuration;
import org.starflink.kafka.EmbeddedKafka;
import org.starflink.pipeline.StarflinkOptions;
import org.starflink.pipeline.client.StarflinkClient;

/** A benchmark job's own topics on the embedded broker (fresh names per job) and the settings that point the job at them. */
record BenchTopics(String bootstrapServers, String suffix, StarflinkClient.TopicNames client, String blockEvents) {

    /** Creates the five topics, named after {@code suffix}, with {@code partitions} each (rejected: 1). */
    static BenchTopics create(EmbeddedKafka kafka, String suffix, int partitions) {
        StarflinkClient.TopicNames client = new StarflinkClient.TopicNames("documents-" + suffix,
                "questions-" + suffix, "answers-" + suffix, "rejected-" + suffix);
        String blockEvents = "block-events-" + suffix;
        kafka.createTopics(Map.of(client.documents(), partitions, client.questions(), partitions, client.answers(),
                partitions, client.rejected(), 1, blockEvents, partitions));
        return new BenchTopics(kafka.bootstrapServers(), suffix, client, blockEvents);
    }

    /** The broker, a consumer group of this job's own, and every topic the job reads or writes. */
    Configuration applyTo(Configuration conf) {
        conf.set(StarflinkOptions.BOOTSTRAP_SERVERS, bootstrapServers);
        conf.set(StarflinkOptions.GROUP_ID, "bench-" + suffix);
        conf.set(StarflinkOptions.DOCUMENTS_TOPIC, client.documents());
        conf.set(StarflinkOptions.QUESTIONS_TOPIC, client.questions());
        conf.set(StarflinkOptions.ANSWERS_TOPIC, client.answers());
        conf.set(StarflinkOptions.REJECTED_TOPIC, client.rejected());
        conf.set(StarflinkOptions.BLOCK_EVENTS_TOPIC, blockEvents);
        return conf;
    }
}
