package org.starflink.pipeline;

import org.apache.flink.streaming.api.datastream.DataStream;
import org.starflink.schemas.AnswerToken;
import org.starflink.schemas.BlockEvent;
import org.starflink.schemas.RejectedRecord;

/** Where the job's outputs go: Kafka in production, the tests' own topics or collecting sinks in tests. */
public interface JobSinks {
    void answers(DataStream<AnswerToken> answers);

    void rejected(DataStream<RejectedRecord> rejected);

    /** What phase 1 did to each block (encoded, skipped after a restore, retired); at-least-once is enough. */
    void blockEvents(DataStream<BlockEvent> blockEvents);
}
