package org.starflink.pipeline;

import static org.apache.flink.configuration.ConfigOptions.key;

import java.time.Duration;
import java.util.Map;
import org.apache.flink.configuration.ConfigOption;
import org.starflink.operators.document.DocumentOperator;

/**
 * The job's typed configuration. Set them in Flink's configuration (config.yaml, -D on the command line, or a
 * FlinkDeployment's flinkConfiguration); the CLI's options map onto them.
 */
public final class StarflinkOptions {
    private StarflinkOptions() {
    }

    public static final ConfigOption<String> MODEL = key("starflink.model").stringType()
            .defaultValue("models/starflink-synth-14m")
            .withDescription("Model: a Hugging Face folder or a llama2.c .bin, as seen from the TaskManagers.");
    public static final ConfigOption<String> TOKENIZER = key("starflink.tokenizer").stringType().noDefaultValue()
            .withDescription("Tokenizer file overriding the model's own.");
    public static final ConfigOption<String> BACKEND = key("starflink.backend").stringType().defaultValue("cpu")
            .withDescription("Engine backend: cpu (PyTorch on the CPU through DJL; alias djl), gpu (our CUDA "
                    + "kernels; fails at start without a usable GPU), auto (the GPU when usable, else the CPU, "
                    + "logged once) or reference (plain Java, slow).");
    public static final ConfigOption<Integer> GPU_DEVICE = key("starflink.gpu.device").intType().defaultValue(-1)
            .withDescription("CUDA device for the gpu backend when Flink's GPU external resource assigns none "
                    + "(-1: device 0, i.e. the first that CUDA_VISIBLE_DEVICES leaves visible).");
    public static final ConfigOption<Integer> BLOCK_SIZE = key("starflink.block-size").intType().defaultValue(1024)
            .withDescription("Tokens per context block (b).");
    public static final ConfigOption<Integer> ANCHOR_SIZE = key("starflink.anchor-size").intType().defaultValue(0)
            .withDescription("Anchor tokens (a, 1..b); 0 = the block size, as in the paper.");
    public static final ConfigOption<Integer> PAGE_TOKENS = key("starflink.kv-page-tokens").intType()
            .defaultValue(64).withDescription("Tokens per KV page in the block operators' state.");
    public static final ConfigOption<Integer> MAX_QUESTIONS_IN_FLIGHT = key("starflink.max-questions-in-flight")
            .intType().defaultValue(32)
            .withDescription("Questions inside the per-layer loop per query-host subtask; more wait (backpressure).");
    public static final ConfigOption<Duration> BLOCK_RETIRE_GRACE = key("starflink.block.retire-grace")
            .durationType().defaultValue(Duration.ofMinutes(2))
            .withDescription("How long a replaced or deleted document's blocks stay readable for questions that "
                    + "started on them, counted from their last request.");
    public static final ConfigOption<Long> BLOCK_CACHE_BYTES = key("starflink.block.local-cache-bytes").longType()
            .defaultValue(256L << 20)
            .withDescription("Decoded KV kept on the heap per block-operator subtask (beyond it: read from state).");
    public static final ConfigOption<Boolean> BLOCK_WIDENED_KV = key("starflink.block.widened-kv").booleanType()
            .defaultValue(true)
            .withDescription("CPU backends: each block in the decoded-KV cache also keeps its keys and values "
                    + "widened to float32 in the layout the attention reads, so that a layer request does not widen "
                    + "them again (3x the bytes of BF16 KV within starflink.block.local-cache-bytes; the same "
                    + "numbers). Turn it off when that cache cannot hold the blocks of the documents in use 3x over.");
    public static final ConfigOption<Duration> DOCUMENT_TTL = key("starflink.document.state-ttl").durationType()
            .noDefaultValue().withDescription("Idle documents expire: a document's catalog this long after its last "
                    + "chunk (a question about it then gets 'unknown document'), each block this long after its last "
                    + "use (a layer request, or the admission of a question over it). A question that waits longer than "
                    + "that at starflink.max-questions-in-flight finds its blocks gone and is answered with an error; "
                    + "one that waits more than twice as long still finds nothing to answer it, so set it above the "
                    + "longest such wait (docs/reliability.md, scenario 5).");
    public static final ConfigOption<Boolean> EXACT_CUTS = key("starflink.document.exact-cuts").booleanType()
            .defaultValue(true).withDescription("Tokenize a streaming document piece by piece at the tokenizer's "
                    + "exact cuts (a space between two letters), O(new text) per chunk, when the tokenizer has such a "
                    + "rule; false re-tokenizes the whole text on every chunk. Same blocks either way; applies to "
                    + "documents that start after the change.");
    public static final ConfigOption<Duration> QUESTION_PREFIX_WAIT = key("starflink.document.prefix-wait")
            .durationType().defaultValue(DocumentOperator.DEFAULT_PREFIX_WAIT)
            .withDescription("A question sees the blocks of its document's chunks up to the question's Kafka "
                    + "timestamp (docs/document-operator.md); while the document streams in, it waits until a chunk "
                    + "newer than it arrives or the document is complete (also for a document not there yet), at "
                    + "most this long; then it is admitted over what it sees by then (or gets 'unknown document'): "
                    + "the one case in which the answer depends on when the job read the chunks.");
    public static final ConfigOption<Boolean> ALLOW_BEYOND_WINDOW = key("starflink.allow-beyond-window")
            .booleanType().defaultValue(false)
            .withDescription("Answer questions whose document exceeds the model's trained context window.");

    public static final ConfigOption<String> BOOTSTRAP_SERVERS = key("starflink.kafka.bootstrap-servers")
            .stringType().noDefaultValue().withDescription("Kafka brokers.");
    public static final ConfigOption<String> GROUP_ID = key("starflink.kafka.group-id").stringType()
            .defaultValue("starflink").withDescription("Consumer group of the job's sources.");
    public static final ConfigOption<Map<String, String>> KAFKA_PROPERTIES = key("starflink.kafka.properties")
            .mapType().defaultValue(Map.of())
            .withDescription("Kafka client properties for every source and sink of the job, one per key under "
                    + "this prefix: starflink.kafka.properties.security.protocol: SASL_SSL, "
                    + "starflink.kafka.properties.sasl.jaas.config: ..., starflink.kafka.properties.ssl.* "
                    + "(docs/kafka.md). Keys the job sets itself (bootstrap.servers, group.id, (de)serializers, "
                    + "transactional ids, isolation level, ...) are refused at submission.");
    public static final ConfigOption<String> DOCUMENTS_TOPIC = key("starflink.topic.documents").stringType()
            .defaultValue("documents");
    public static final ConfigOption<String> QUESTIONS_TOPIC = key("starflink.topic.questions").stringType()
            .defaultValue("questions");
    public static final ConfigOption<String> ANSWERS_TOPIC = key("starflink.topic.answers").stringType()
            .defaultValue("answers");
    public static final ConfigOption<String> REJECTED_TOPIC = key("starflink.topic.rejected").stringType()
            .defaultValue("rejected");
    public static final ConfigOption<String> BLOCK_EVENTS_TOPIC = key("starflink.topic.block-events").stringType()
            .defaultValue("block-events")
            .withDescription("Where the block operators write a BlockEvent per encode, per encode skipped because the "
                    + "block was restored, and per retirement (at-least-once, keyed by block).");
    public static final ConfigOption<Boolean> EXACTLY_ONCE = key("starflink.answers.exactly-once").booleanType()
            .defaultValue(false)
            .withDescription("Transactional answers, visible to read_committed consumers at each checkpoint. "
                    + "Default: at-least-once, keyed by (question_id, index), visible at once.");
}
