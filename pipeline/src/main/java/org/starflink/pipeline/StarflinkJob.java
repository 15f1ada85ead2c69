package org.starflink.pipeline;

import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.functions.KeySelector;
import org.apache.flink.configuration.CheckpointingOptions;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.PipelineOptions;
import org.apache.flink.configuration.ReadableConfig;
import org.apache.flink.connector.base.DeliveryGuarantee;
import org.apache.flink.connector.kafka.source.enumerator.initializer.OffsetsInitializer;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.datastream.DataStreamUtils;
import org.apache.flink.streaming.api.datastream.SingleOutputStreamOperator;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.util.ParameterTool;
import org.starflink.engine.star.BlockLayout;
import org.starflink.operators.block.BlockOperator;
import org.starflink.operators.block.BlockOperatorRunner;
import org.starflink.operators.document.DocumentOperator;
import org.starflink.operators.host.QueryHostOperator;
import org.starflink.operators.host.QueryHostOperatorRunner;
import org.starflink.operators.kafka.AvroKafka;
import org.starflink.operators.kafka.DecodeOrReject;
import org.starflink.operators.kafka.KafkaClientProperties;
import org.starflink.operators.kafka.KafkaRawRecord;
import org.starflink.operators.loop.FeedbackLoop;
import org.starflink.operators.messages.BlockCommand;
import org.starflink.operators.messages.BlockRequest;
import org.starflink.operators.messages.HostMessage;
import org.starflink.operators.messages.QuestionTask;
import org.starflink.operators.model.ModelLocation;
import org.starflink.schemas.AnswerToken;
import org.starflink.schemas.BlockEvent;
import org.starflink.schemas.DocumentEvent;
import org.starflink.schemas.Question;
import org.starflink.schemas.RejectedRecord;

/**
 * The Starflink streaming job: documents -> anchored blocks with KV in keyed state; questions -> per-layer
 * fan-out -> keyed merge -> streamed tokens. {@link #defineWorkflow} is the whole topology; {@link #main} wires it
 * to Kafka (tests wire it to their own sources and sinks).
 *
 * <pre>
 *  documents ─decode─► DocumentOperator ──BlockCommand──────────────────► BlockOperator ─┐ partials, one
 *  questions ─decode─►  (by doc_id)     ──QuestionTask─► loop head ─► QueryHost ─requests┘   (by block) bundle
 *                                                           ▲          (by document)         │  per subtask
 *                                                           └────── loop tail ◄──────────────┘
 *                                                      answers ◄─ QueryHost, DocumentOperator (errors)
 *                                                 block events ◄─ BlockOperator (encoded, skipped, retired)
 * </pre>
 */
public final class StarflinkJob {
    public static final String LOOP_ID = "layers";

    private StarflinkJob() {
    }

    /** Builds the topology on {@code env} from raw Kafka records; outputs go to {@code sinks}. */
    public static void defineWorkflow(StreamExecutionEnvironment env, DataStream<KafkaRawRecord> documentRecords,
                                      DataStream<KafkaRawRecord> questionRecords, JobSinks sinks,
                                      Configuration options) {
        ModelLocation model = new ModelLocation(options.get(StarflinkOptions.MODEL),
                options.get(StarflinkOptions.TOKENIZER), options.get(StarflinkOptions.BACKEND),
                options.get(StarflinkOptions.GPU_DEVICE));
        int blockSize = options.get(StarflinkOptions.BLOCK_SIZE);
        int anchorSize = options.get(StarflinkOptions.ANCHOR_SIZE) == 0 ? blockSize
                : options.get(StarflinkOptions.ANCHOR_SIZE);

        SingleOutputStreamOperator<DocumentEvent> documents = AvroKafka.decode(documentRecords, DocumentEvent.class,
                "decode-documents");
        SingleOutputStreamOperator<Question> questions = AvroKafka.decode(questionRecords, Question.class,
                "decode-questions");

        SingleOutputStreamOperator<QuestionTask> accepted = documents.keyBy(DocumentEvent::getDocId)
                .connect(questions.keyBy(Question::getDocId))
                .process(new DocumentOperator(model, new BlockLayout(blockSize, anchorSize),
                        options.get(StarflinkOptions.ALLOW_BEYOND_WINDOW),
                        options.getOptional(StarflinkOptions.DOCUMENT_TTL).orElse(null),
                        options.get(StarflinkOptions.EXACT_CUTS),
                        options.get(StarflinkOptions.QUESTION_PREFIX_WAIT)))
                .uid("document-operator").name("Documents: chunks -> blocks, questions -> catalog");
        DataStream<BlockCommand> blockCommands = accepted.getSideOutput(DocumentOperator.BLOCK_COMMANDS);

        // The loop and the query host are keyed by document version: the questions on one version share a host,
        // whose batch sends one request per block and layer for all of them.
        KeySelector<HostMessage, String> byHost = message -> message.hostKey;
        // Block keys spread a document's blocks evenly over the subtasks, given the key groups (BlockKeys).
        int blockMaxParallelism = env.getConfig().getMaxParallelism();
        if (blockMaxParallelism <= 0) {
            throw new IllegalArgumentException("set " + PipelineOptions.MAX_PARALLELISM.key() + ": the block keys and "
                    + "the loop depend on it");
        }
        FeedbackLoop<HostMessage, String> loop = FeedbackLoop.open(LOOP_ID,
                accepted.map(HostMessage::question).uid("questions-into-loop").name("Question -> loop")
                        .keyBy(byHost),
                options.get(StarflinkOptions.MAX_QUESTIONS_IN_FLIGHT));
        // The head's output is already partitioned by the host key (its input is keyed by it, the tail routes
        // feedback to the key's subtask): no second shuffle, the host is chained to the head.
        SingleOutputStreamOperator<BlockRequest> requests = DataStreamUtils.reinterpretAsKeyedStream(loop.head(),
                        byHost, Types.STRING)
                .transform("Query host: per-layer merge, sampling", TypeInformation.of(BlockRequest.class),
                        new QueryHostOperatorRunner(new QueryHostOperator(model, blockMaxParallelism)))
                .uid("query-host").name("Query host: per-layer merge, sampling");

        SingleOutputStreamOperator<HostMessage> partials = blockCommands
                .keyBy(command -> command.blockKey(blockMaxParallelism))
                .connect(requests.keyBy(request -> request.blockKey))
                .transform("Context blocks: phase 1 + partial attention", TypeInformation.of(HostMessage.class),
                        new BlockOperatorRunner(new BlockOperator(model, options.get(StarflinkOptions.PAGE_TOKENS),
                                options.get(StarflinkOptions.BLOCK_RETIRE_GRACE),
                                options.get(StarflinkOptions.BLOCK_CACHE_BYTES),
                                options.get(StarflinkOptions.BLOCK_WIDENED_KV),
                                options.getOptional(StarflinkOptions.DOCUMENT_TTL).orElse(null))))
                .uid("block-operator").name("Context blocks: phase 1 + partial attention");
        loop.close(partials, requests.getSideOutput(QueryHostOperator.EXITS));

        sinks.answers(requests.getSideOutput(QueryHostOperator.ANSWERS)
                .union(accepted.getSideOutput(DocumentOperator.ANSWER_ERRORS)));
        sinks.rejected(documents.getSideOutput(DecodeOrReject.REJECTED)
                .union(questions.getSideOutput(DecodeOrReject.REJECTED)));
        sinks.blockEvents(partials.getSideOutput(BlockOperator.BLOCK_EVENTS));
    }

    /** Reads the topics of {@link StarflinkOptions} and writes answers, rejections and block events to Kafka. */
    public static void defineKafkaJob(StreamExecutionEnvironment env, Configuration options) {
        String bootstrap = options.getOptional(StarflinkOptions.BOOTSTRAP_SERVERS).orElseThrow(
                () -> new IllegalArgumentException(StarflinkOptions.BOOTSTRAP_SERVERS.key() + " is not set"));
        String group = options.get(StarflinkOptions.GROUP_ID);
        KafkaClientProperties client = kafkaClientProperties(options);
        DataStream<KafkaRawRecord> documentRecords = env.fromSource(
                AvroKafka.rawSource(bootstrap, options.get(StarflinkOptions.DOCUMENTS_TOPIC), group,
                        OffsetsInitializer.earliest(), null, client),
                WatermarkStrategy.noWatermarks(), "Kafka: documents").uid("source-documents");
        DataStream<KafkaRawRecord> questionRecords = env.fromSource(
                AvroKafka.rawSource(bootstrap, options.get(StarflinkOptions.QUESTIONS_TOPIC), group,
                        OffsetsInitializer.earliest(), null, client),
                WatermarkStrategy.noWatermarks(), "Kafka: questions").uid("source-questions");
        boolean exactlyOnce = options.get(StarflinkOptions.EXACTLY_ONCE);
        DeliveryGuarantee guarantee = exactlyOnce ? DeliveryGuarantee.EXACTLY_ONCE : DeliveryGuarantee.AT_LEAST_ONCE;
        defineWorkflow(env, documentRecords, questionRecords, new JobSinks() {
            @Override
            public void answers(DataStream<AnswerToken> answers) {
                answers.sinkTo(AvroKafka.avroSink(bootstrap, options.get(StarflinkOptions.ANSWERS_TOPIC),
                                AnswerToken.class, AnswerToken::getQuestionId, guarantee,
                                exactlyOnce ? "starflink-answers" : null, client))
                        .uid("sink-answers").name("Kafka: answers");
            }

            @Override
            public void rejected(DataStream<RejectedRecord> rejected) {
                rejected.sinkTo(AvroKafka.avroSink(bootstrap, options.get(StarflinkOptions.REJECTED_TOPIC),
                                RejectedRecord.class, r -> r.getSourceTopic() + "/" + r.getSourcePartition(), DeliveryGuarantee.AT_LEAST_ONCE,
                                null, client))
                        .uid("sink-rejected").name("Kafka: rejected");
            }

            @Override
            public void blockEvents(DataStream<BlockEvent> blockEvents) {
                blockEvents.sinkTo(AvroKafka.avroSink(bootstrap, options.get(StarflinkOptions.BLOCK_EVENTS_TOPIC),
                                BlockEvent.class, BlockEvent::getBlockKey, DeliveryGuarantee.AT_LEAST_ONCE, null, client))
                        .uid("sink-block-events").name("Kafka: block events");
            }
        }, options);
    }

    /**
     * The maximum parallelism the job sets when Flink's configuration sets none ({@code pipeline.max-parallelism}):
     * the per-layer loop's head and tail must agree on key groups across restores and rescaling.
     */
    public static final int DEFAULT_MAX_PARALLELISM = 128;

    /**
     * Entry point of the job jar on a cluster ({@code flink run starflink-job.jar --starflink.x value ...}): the
     * settings are Flink's configuration (config.yaml, -D) with the program arguments on top.
     */
    public static void main(String[] args) throws Exception {
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        defineClusterJob(env, args);
        env.execute("starflink");
    }

    /** Everything {@link #main} does before it submits: the settings, then the Kafka job on {@code env}. */
    public static Configuration defineClusterJob(StreamExecutionEnvironment env, String[] args) {
        Configuration options = jobOptions(env.getConfiguration(), args);
        env.configure(settingsTheJobNeeds(options));
        defineKafkaJob(env, options);
        return options;
    }

    /**
     * The job's settings: the cluster's configuration, then the program arguments ({@code --key value}) over it.
     * Fails with one line naming the setting when something the job cannot run without is missing or wrong.
     */
    public static Configuration jobOptions(ReadableConfig cluster, String[] args) {
        Configuration options = Configuration.fromMap(cluster.toMap());
        options.addAll(Configuration.fromMap(ParameterTool.fromArgs(args).toMap()));
        if (options.getOptional(StarflinkOptions.BOOTSTRAP_SERVERS).isEmpty()) {
            throw new IllegalArgumentException(StarflinkOptions.BOOTSTRAP_SERVERS.key() + " is not set: pass --"
                    + StarflinkOptions.BOOTSTRAP_SERVERS.key() + " HOST:PORT or set it in the Flink configuration");
        }
        if (options.get(CheckpointingOptions.ENABLE_UNALIGNED)) {
            throw new IllegalArgumentException(CheckpointingOptions.ENABLE_UNALIGNED.key()
                    + " is true: the per-layer loop needs aligned checkpoints (docs/loop.md); set it to false");
        }
        kafkaClientProperties(options);
        return options;
    }

    /**
     * The user's Kafka client properties ({@link StarflinkOptions#KAFKA_PROPERTIES}) for every source and sink;
     * a key the job sets itself fails with one line naming it.
     */
    public static KafkaClientProperties kafkaClientProperties(ReadableConfig options) {
        return KafkaClientProperties.of(options.get(StarflinkOptions.KAFKA_PROPERTIES),
                StarflinkOptions.KAFKA_PROPERTIES.key() + ".");
    }

    /**
     * What the job sets itself unless the configuration says otherwise ({@link ClusterSettings#JOB_DEFAULTS}): a
     * maximum parallelism (the loop needs one), no network buffering delay (a layer crosses the network twice per
     * token) and no Kryo fallback.
     */
    public static Configuration settingsTheJobNeeds(Configuration options) {
        return ClusterSettings.withJobDefaults(options);
    }
}
