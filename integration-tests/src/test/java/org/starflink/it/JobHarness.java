package org.starflink.it;

import java.nio.file.Path;
import java.time.Duration;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.function.UnaryOperator;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.dag.Transformation;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.StateRecoveryOptions;
import org.apache.flink.connector.base.DeliveryGuarantee;
import org.apache.flink.connector.kafka.source.enumerator.initializer.OffsetsInitializer;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.starflink.operators.cluster.LoopbackCluster;
import org.starflink.kafka.EmbeddedKafka;
import org.starflink.operators.kafka.AvroKafka;
import org.starflink.operators.kafka.KafkaRawRecord;
import org.starflink.pipeline.ClusterSettings;
import org.starflink.pipeline.JobSinks;
import org.starflink.pipeline.StarflinkJob;
import org.starflink.pipeline.StarflinkOptions;
import org.starflink.schemas.AnswerToken;
import org.starflink.schemas.BlockEvent;
import org.starflink.schemas.RejectedRecord;

/**
 * The production topology ({@link StarflinkJob#defineWorkflow}) between real Kafka topics of its own, on the
 * test's MiniCluster, with RocksDB and checkpoints. Tests may wrap the document records or the answers (to inject
 * a failure) without touching the topology.
 */
final class JobHarness {
    /** The jobs' key groups: block keys depend on them ({@code BlockKeys.of}). */
    static final int MAX_PARALLELISM = 32;

    final String suffix = UUID.randomUUID().toString().substring(0, 8);
    final String documents = "documents-" + suffix;
    final String questions = "questions-" + suffix;
    final String answers = "answers-" + suffix;
    final String rejected = "rejected-" + suffix;
    final String blockEvents = "block-events-" + suffix;
    private final EmbeddedKafka kafka;
    /**
     * How many restarts the job may take: exactly the failures the test injects. Any other crash (a bug, the loop
     * head's consistency checks) then fails the job, and the test with it, instead of being retried silently.
     * Negative control (run once: an unplanned FailOnce on the answers of a test that injects nothing):
     * "AssertionError: the job is FAILED (restarted more often than failures were injected?)", caused by
     * "Recovery is suppressed by NoRestartBackoffTimeStrategy" and "injected failure unplanned-629ace22 after 5
     * records".
     */
    private int injectedFailures;
    /** A savepoint or checkpoint the next {@link #start} restores from (null: start empty). */
    String restoreFrom;
    /** The uid of the operator whose state the next {@link #start} leaves behind (null: it restores everything). */
    private String withoutStateOf;

    /** Wraps the rejected records before their sink (e.g. to hold a checkpoint where no answer waits for it). */
    private UnaryOperator<DataStream<RejectedRecord>> aroundRejected = UnaryOperator.identity();

    JobHarness(EmbeddedKafka kafka) {
        this.kafka = kafka;
        kafka.createTopics(Map.of(documents, 2, questions, 2, answers, 2, rejected, 1, blockEvents, 2));
    }

    /** The test injects {@code count} failures: the job restarts that many times and no more. */
    JobHarness injectingFailures(int count) {
        this.injectedFailures = count;
        return this;
    }

    /**
     * For negative controls: the next {@link #start} restores {@link #restoreFrom} except the state of the operator
     * with this uid. The test's copy of the topology gives that operator another uid, so the restore finds no
     * state for it (and ignores the state it leaves unclaimed): the operator starts empty, as if its state
     * had been lost. Production code is not touched.
     */
    JobHarness startingWithoutStateOf(String uid) {
        this.withoutStateOf = uid;
        return this;
    }

    /** The next {@link #start} wraps the rejected records (the stream before the rejected topic's sink). */
    JobHarness wrappingRejected(UnaryOperator<DataStream<RejectedRecord>> around) {
        this.aroundRejected = around;
        return this;
    }

    static Configuration options(Path model, int blockSize, int anchorSize) {
        Configuration options = new Configuration();
        options.set(StarflinkOptions.MODEL, model.toString());
        options.set(StarflinkOptions.BLOCK_SIZE, blockSize);
        options.set(StarflinkOptions.ANCHOR_SIZE, anchorSize);
        options.set(StarflinkOptions.PAGE_TOKENS, 16);
        options.set(StarflinkOptions.MAX_QUESTIONS_IN_FLIGHT, 8);
        options.set(StarflinkOptions.BLOCK_RETIRE_GRACE, Duration.ofMillis(500));
        return options;
    }

    JobClient start(int parallelism, Path checkpoints, Configuration options,
                    UnaryOperator<DataStream<KafkaRawRecord>> aroundDocuments,
                    UnaryOperator<DataStream<AnswerToken>> aroundAnswers) throws Exception {
        return start(parallelism, checkpoints, options, aroundDocuments, aroundAnswers, false);
    }

    /** @param exactlyOnce answers through the transactional sink, as {@code starflink.answers.exactly-once} */
    JobClient start(int parallelism, Path checkpoints, Configuration options,
                    UnaryOperator<DataStream<KafkaRawRecord>> aroundDocuments,
                    UnaryOperator<DataStream<AnswerToken>> aroundAnswers, boolean exactlyOnce) throws Exception {
        return start(parallelism, checkpoints, options, aroundDocuments, UnaryOperator.identity(), aroundAnswers,
                exactlyOnce);
    }

    /** @param aroundQuestions wraps the question records between their source and the topology */
    JobClient start(int parallelism, Path checkpoints, Configuration options,
                    UnaryOperator<DataStream<KafkaRawRecord>> aroundDocuments,
                    UnaryOperator<DataStream<KafkaRawRecord>> aroundQuestions,
                    UnaryOperator<DataStream<AnswerToken>> aroundAnswers, boolean exactlyOnce) throws Exception {
        // The production settings (any Kryo fallback fails the job), with frequent checkpoints.
        Configuration cluster = LoopbackCluster.apply(
                ClusterSettings.apply(new Configuration(), checkpoints, Duration.ofMillis(100)));
        if (injectedFailures == 0) {
            cluster.setString("restart-strategy.type", "none");
        } else {
            cluster.setString("restart-strategy.type", "fixed-delay");
            cluster.setString("restart-strategy.fixed-delay.attempts", Integer.toString(injectedFailures));
            cluster.setString("restart-strategy.fixed-delay.delay", "200 ms");
        }
        // Kept when the job fails (a negative control restores a failed job's last checkpoint as a new job),
        // deleted when a test cancels it.
        cluster.setString("execution.checkpointing.externalized-checkpoint-retention", "DELETE_ON_CANCELLATION");
        if (restoreFrom != null) {
            cluster.setString("execution.state-recovery.path", restoreFrom);
            cluster.set(StateRecoveryOptions.SAVEPOINT_IGNORE_UNCLAIMED_STATE, withoutStateOf != null);
        }
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment(cluster);
        env.setParallelism(parallelism);
        env.setMaxParallelism(MAX_PARALLELISM);

        String bootstrap = kafka.bootstrapServers();
        DataStream<KafkaRawRecord> documentRecords = aroundDocuments.apply(env.fromSource(
                AvroKafka.rawSource(bootstrap, documents, "it-" + suffix, OffsetsInitializer.earliest(), null),
                WatermarkStrategy.noWatermarks(), "documents").uid("source-documents"));
        DataStream<KafkaRawRecord> questionRecords = aroundQuestions.apply(env.fromSource(
                AvroKafka.rawSource(bootstrap, questions, "it-" + suffix, OffsetsInitializer.earliest(), null),
                WatermarkStrategy.noWatermarks(), "questions").uid("source-questions"));
        StarflinkJob.defineWorkflow(env, documentRecords, questionRecords, new JobSinks() {
            @Override
            public void answers(DataStream<AnswerToken> stream) {
                aroundAnswers.apply(stream).sinkTo(AvroKafka.avroSink(bootstrap, answers, AnswerToken.class,
                        AnswerToken::getQuestionId,
                        exactlyOnce ? DeliveryGuarantee.EXACTLY_ONCE : DeliveryGuarantee.AT_LEAST_ONCE,
                        exactlyOnce ? "it-answers-" + suffix : null)).uid("sink-answers");
            }

            @Override
            public void rejected(DataStream<RejectedRecord> stream) {
                aroundRejected.apply(stream).sinkTo(AvroKafka.avroSink(bootstrap, rejected, RejectedRecord.class,
                        RejectedRecord::getSourceTopic, DeliveryGuarantee.AT_LEAST_ONCE, null)).uid("sink-rejected");
            }

            @Override
            public void blockEvents(DataStream<BlockEvent> stream) {
                stream.sinkTo(AvroKafka.avroSink(bootstrap, blockEvents, BlockEvent.class, BlockEvent::getBlockKey,
                        DeliveryGuarantee.AT_LEAST_ONCE, null)).uid("sink-block-events");
            }
        }, options);
        if (restoreFrom != null && withoutStateOf != null) {
            renameUid(env, withoutStateOf, withoutStateOf + "-without-state");
        }
        return env.executeAsync("starflink-it-" + suffix);
    }

    /** Gives the one operator of the test's topology with uid {@code from} the uid {@code to}. */
    private static void renameUid(StreamExecutionEnvironment env, String from, String to) {
        Set<Transformation<?>> all = new HashSet<>();
        for (Transformation<?> transformation : env.getTransformations()) {
            all.addAll(transformation.getTransitivePredecessors());
        }
        List<Transformation<?>> matches = all.stream().filter(t -> from.equals(t.getUid())).toList();
        if (matches.size() != 1) {
            throw new IllegalArgumentException("expected one operator with uid " + from + ", found " + matches);
        }
        matches.get(0).setUid(to);
    }
}
