package org.starflink.pipeline;

import org.apache.flink.streaming.api.datastream.DataStream;
import org.starflink.schemas.AnswerToken;
import org.starflink.schemas.RejectedRecord;

/** Where the job's two outputs go: Kafka in production, collecting sinks in tests. */
public interface JobSinks {
    void answers(DataStream<AnswerToken> answers);

    void rejected(DataStream<RejectedRecord> rejected);
}
