package org.starflink.pipeline.cli;

import org.starflink.pipeline.client.StarflinkClient;
import org.starflink.schemas.Topics;
import picocli.CommandLine.Option;

/** How a client command reaches the job's topics. */
final class KafkaOptions {
    @Option(names = "--bootstrap-servers", paramLabel = "HOST:PORT", required = true,
            description = "Kafka brokers (starflink run prints the embedded broker's address).")
    String bootstrapServers;

    @Option(names = "--topic-prefix", paramLabel = "PREFIX", defaultValue = "",
            description = "Prefix of the topic names (default: none).")
    String topicPrefix;

    StarflinkClient client() {
        return new StarflinkClient(bootstrapServers, new StarflinkClient.TopicNames(topicPrefix + Topics.DOCUMENTS,
                topicPrefix + Topics.QUESTIONS, topicPrefix + Topics.ANSWERS, topicPrefix + Topics.REJECTED));
    }
}
