package org.starflink.pipeline;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.runtime.jobgraph.JobGraph;
import org.apache.flink.runtime.jobgraph.JobVertex;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink;
import org.apache.flink.streaming.api.graph.StreamGraph;
import org.apache.flink.streaming.api.graph.StreamNode;
import org.junit.jupiter.api.Test;
import org.starflink.engine.testing.SharedModels;
import org.starflink.operators.kafka.KafkaRawRecord;
import org.starflink.operators.loop.FeedbackLoop;
import org.starflink.schemas.AnswerToken;
import org.starflink.schemas.BlockEvent;
import org.starflink.schemas.RejectedRecord;

/**
 * The production topology's graph: the loop's head and tail share a co-location group (a MiniCluster runs in
 * one JVM and cannot show a mistake here), and every operator carries its stable uid.
 */
class StarflinkJobGraphTest {

    private static StreamGraph graph() {
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        env.setParallelism(2);
        env.setMaxParallelism(64);
        TypeInformation<KafkaRawRecord> raw = TypeInformation.of(KafkaRawRecord.class);
        DataStream<KafkaRawRecord> documents = env.fromData(List.of(), raw).uid("test-documents");
        DataStream<KafkaRawRecord> questions = env.fromData(List.of(), raw).uid("test-questions");
        Configuration options = new Configuration();
        options.set(StarflinkOptions.MODEL, SharedModels.stories260KDir().resolve("stories260K.bin").toString());
        StarflinkJob.defineWorkflow(env, documents, questions, new JobSinks() {
            @Override
            public void answers(DataStream<AnswerToken> answers) {
                answers.sinkTo(new DiscardingSink<>()).uid("test-answers");
            }

            @Override
            public void rejected(DataStream<RejectedRecord> rejected) {
                rejected.sinkTo(new DiscardingSink<>()).uid("test-rejected");
            }

            @Override
            public void blockEvents(DataStream<BlockEvent> blockEvents) {
                blockEvents.sinkTo(new DiscardingSink<>()).uid("test-block-events");
            }
        }, options);
        return env.getStreamGraph();
    }

    @Test
    void loopHeadAndTailAreCoLocated() {
        JobGraph jobGraph = graph().getJobGraph();
        JobVertex head = vertexNamed(jobGraph, "Loop head: " + StarflinkJob.LOOP_ID);
        JobVertex tail = vertexNamed(jobGraph, "Loop tail: " + StarflinkJob.LOOP_ID);
        assertNotNull(head.getCoLocationGroup(), "loop head has no co-location group");
        assertEquals(head.getCoLocationGroup(), tail.getCoLocationGroup());
        assertEquals(head.getSlotSharingGroup(), tail.getSlotSharingGroup());
        assertEquals(head.getParallelism(), tail.getParallelism());
        for (JobVertex vertex : jobGraph.getVertices()) {
            if (vertex != head && vertex != tail) {
                assertEquals(null, vertex.getCoLocationGroup(), "unexpected co-location on " + vertex.getName());
            }
        }
    }

    /**
     * Every operator of the topology has an explicit uid (a restore maps state by uid; a generated one changes
     * with the graph), and the stateful ones have the uids their state is saved under.
     */
    @Test
    void everyOperatorHasAStableUid() {
        StreamGraph graph = graph();
        List<String> withoutUid = graph.getStreamNodes().stream()
                .filter(node -> node.getTransformationUID() == null || node.getTransformationUID().isBlank())
                .map(StreamNode::getOperatorName).toList();
        assertEquals(List.of(), withoutUid, "operators without an explicit uid");
        Set<String> uids = graph.getStreamNodes().stream().map(StreamNode::getTransformationUID)
                .collect(Collectors.toSet());
        for (String expected : List.of("decode-documents", "decode-questions", "document-operator",
                "questions-into-loop", "query-host", "block-operator",
                FeedbackLoop.headUid(StarflinkJob.LOOP_ID), FeedbackLoop.tailUid(StarflinkJob.LOOP_ID))) {
            assertTrue(uids.contains(expected), "no operator with uid " + expected + " in " + uids);
        }
    }

    /** The job vertex whose (chain) name mentions the loop operator's name. */
    private static JobVertex vertexNamed(JobGraph jobGraph, String fragment) {
        JobVertex found = null;
        for (JobVertex vertex : jobGraph.getVertices()) {
            if (vertex.getName().contains(fragment)) {
                assertTrue(found == null, "two vertices named " + fragment);
                found = vertex;
            }
        }
        assertNotNull(found, "no job vertex named " + fragment);
        return found;
    }
}
