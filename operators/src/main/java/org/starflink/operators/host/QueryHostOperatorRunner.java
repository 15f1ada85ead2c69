package org.starflink.operators.host;

import org.apache.flink.streaming.api.operators.KeyedProcessOperator;
import org.starflink.operators.messages.BlockRequest;
import org.starflink.operators.messages.HostMessage;

/**
 * The Flink operator that runs a {@link QueryHostOperator}: Flink's keyed process operator, plus the moment a
 * function does not see. Before a checkpoint barrier goes downstream, the partials each host gathered for its layer
 * in flight go into its keyed state (between barriers they stay in the heap: {@link GatheredPartials}).
 */
public final class QueryHostOperatorRunner extends KeyedProcessOperator<String, HostMessage, BlockRequest> {
    private final QueryHostOperator host;

    public QueryHostOperatorRunner(QueryHostOperator host) {
        super(host);
        this.host = host;
    }

    @Override
    public void prepareSnapshotPreBarrier(long checkpointId) throws Exception {
        super.prepareSnapshotPreBarrier(checkpointId);
        host.storeGatheredPartials(this::setCurrentKey);
    }
}
