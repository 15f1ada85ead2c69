package org.starflink.pipeline;

import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.connector.base.DeliveryGuarantee;
import org.apache.flink.connector.kafka.source.enumerator.initializer.OffsetsInitializer;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.datastream.SingleOutputStreamOperator;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.starflink.engine.star.BlockLayout;
import org.starflink.operators.block.BlockOperator;
import org.starflink.operators.document.DocumentOperator;
import org.starflink.operators.host.QueryHostOperator;
import org.starflink.operators.kafka.AvroKafka;
import org.starflink.operators.kafka.DecodeOrReject;
import org.starflink.operators.kafka.KafkaRawRecord;
import org.starflink.operators.loop.FeedbackLoop;
import org.starflink.operators.messages.BlockCommand;
import org.starflink.operators.messages.BlockRequest;
import org.starflink.operators.messages.HostMessage;
import org.starflink.operators.messages.QuestionTask;
import org.starflink.operators.model.ModelLocation;
import org.starflink.schemas.AnswerToken;
import org.starflink.schemas.DocumentEvent;
import org.starflink.schemas.Question;
import org.starflink.schemas.RejectedRecord;

/**
 * The Starflink streaming job: documents -> anchored blocks with KV in keyed state; questions -> per-layer
 * fan-out -> keyed merge -> streamed tokens. {@link #defineWorkflow} is the whole topology; {@link #main} wires it
 * to Kafka (tests wire it to their own sources and sinks).
 *
 * <pre>
 *  documents ─decode─► DocumentOperator ──BlockCommand──────────────────► BlockOperator ─┐ partials
 *  questions ─decode─►  (by doc_id)     ──QuestionTask─► loop head ─► QueryHost ─requests┘   (by block)
 *                                                           ▲          (by question)         │
 *                                                           └────── loop tail ◄──────────────┘
 *                                                      answers ◄─ QueryHost, DocumentOperator (errors)
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
                        options.getOptional(StarflinkOptions.DOCUMENT_TTL).orElse(null)))
                .uid("document-operator").name("Documents: chunks -> blocks, questions -> catalog");
        DataStream<BlockCommand> blockCommands = accepted.getSideOutput(DocumentOperator.BLOCK_COMMANDS);

        FeedbackLoop<HostMessage, String> loop = FeedbackLoop.open(LOOP_ID,
                accepted.map(HostMessage::question).uid("questions-into-loop").name("Question -> loop")
                        .keyBy(message -> message.questionId),
                options.get(StarflinkOptions.MAX_QUESTIONS_IN_FLIGHT));
        SingleOutputStreamOperator<BlockRequest> requests = loop.head().keyBy(message -> message.questionId)
                .process(new QueryHostOperator(model))
                .uid("query-host").name("Query host: per-layer merge, sampling");

        SingleOutputStreamOperator<HostMessage> partials = blockCommands.keyBy(BlockCommand::blockKey)
                .connect(requests.keyBy(request -> request.blockKey))
                .process(new BlockOperator(model, options.get(StarflinkOptions.PAGE_TOKENS),
                        options.get(StarflinkOptions.BLOCK_RETIRE_GRACE),
                        options.get(StarflinkOptions.BLOCK_CACHE_BYTES),
                        options.getOptional(StarflinkOptions.DOCUMENT_TTL).orElse(null)))
                .uid("block-operator").name("Context blocks: phase 1 + partial attention");
        loop.close(partials, requests.getSideOutput(QueryHostOperator.EXITS));

        sinks.answers(requests.getSideOutput(QueryHostOperator.ANSWERS)
                .union(accepted.getSideOutput(DocumentOperator.ANSWER_ERRORS)));
        sinks.rejected(documents.getSideOutput(DecodeOrReject.REJECTED)
                .union(questions.getSideOutput(DecodeOrReject.REJECTED)));
    }

    /** Reads the topics of {@link StarflinkOptions} and writes answers and rejections back to Kafka. */
    public static void defineKafkaJob(StreamExecutionEnvironment env, Configuration options) {
        String bootstrap = options.getOptional(StarflinkOptions.BOOTSTRAP_SERVERS).orElseThrow(
                () -> new IllegalArgumentException(StarflinkOptions.BOOTSTRAP_SERVERS.key() + " is not set"));
        String group = options.get(StarflinkOptions.GROUP_ID);
        DataStream<KafkaRawRecord> documentRecords = env.fromSource(
                AvroKafka.rawSource(bootstrap, options.get(StarflinkOptions.DOCUMENTS_TOPIC), group,
                        OffsetsInitializer.earliest(), null),
                WatermarkStrategy.noWatermarks(), "Kafka: documents").uid("source-documents");
        DataStream<KafkaRawRecord> questionRecords = env.fromSource(
                AvroKafka.rawSource(bootstrap, options.get(StarflinkOptions.QUESTIONS_TOPIC), group,
                        OffsetsInitializer.earliest(), null),
                WatermarkStrategy.noWatermarks(), "Kafka: questions").uid("source-questions");
        boolean exactlyOnce = options.get(StarflinkOptions.EXACTLY_ONCE);
        DeliveryGuarantee guarantee = exactlyOnce ? DeliveryGuarantee.EXACTLY_ONCE : DeliveryGuarantee.AT_LEAST_ONCE;
        defineWorkflow(env, documentRecords, questionRecords, new JobSinks() {
            @Override
            public void answers(DataStream<AnswerToken> answers) {
                answers.sinkTo(AvroKafka.avroSink(bootstrap, options.get(StarflinkOptions.ANSWERS_TOPIC),
                                AnswerToken.class, AnswerToken::getQuestionId, guarantee,
                                exactlyOnce ? "starflink-answers" : null))
                        .uid("sink-answers").name("Kafka: answers");
            }

            @Override
            public void rejected(DataStream<RejectedRecord> rejected) {
                rejected.sinkTo(AvroKafka.avroSink(bootstrap, options.get(StarflinkOptions.REJECTED_TOPIC),
                                RejectedRecord.class, r -> r.getSourceTopic() + "/" + r.getSourcePartition(), DeliveryGuarantee.AT_LEAST_ONCE,
                                null))
                        .uid("sink-rejected").name("Kafka: rejected");
            }
        }, options);
    }

    /** Entry point of the job jar on a cluster: configuration comes from Flink's (-D, config.yaml). */
    public static void main(String[] args) throws Exception {
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        Configuration options = Configuration.fromMap(org.apache.flink.util.ParameterTool
                .fromArgs(args).toMap());
        defineKafkaJob(env, options);
        env.execute("starflink");
    }
}
