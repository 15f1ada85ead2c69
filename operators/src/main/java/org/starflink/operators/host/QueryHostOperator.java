package org.starflink.operators.host;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.state.MapState;
import org.apache.flink.api.common.state.MapStateDescriptor;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.PrimitiveArrayTypeInfo;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.util.Collector;
import org.apache.flink.util.OutputTag;
import org.starflink.engine.attention.AttentionPartial;
import org.starflink.engine.forward.Transformer;
import org.starflink.engine.generate.AnswerBuilder;
import org.starflink.engine.generate.FinishReason;
import org.starflink.engine.generate.Sampler;
import org.starflink.engine.generate.SamplingParams;
import org.starflink.engine.model.Model;
import org.starflink.engine.attention.LayerRequest;
import org.starflink.engine.star.QueryHost;
import org.starflink.engine.wire.HostState;
import org.starflink.engine.wire.KvPage;
import org.starflink.engine.wire.KvPages;
import org.starflink.engine.wire.PhaseTwoCodec;
import org.starflink.operators.messages.BlockKeys;
import org.starflink.operators.messages.BlockRequest;
import org.starflink.operators.messages.HostMessage;
import org.starflink.operators.messages.QuestionTask;
import org.starflink.operators.model.ModelLocation;
import org.starflink.schemas.AnswerToken;

/**
 * The query host of Star Attention phase 2, keyed by question id, inside the per-layer loop. For every pass (the
 * question, then each generated token) and every layer it sends one {@link BlockRequest} to each block of the
 * question's document, waits for all their partials, merges them exactly with its own (the engine's
 * {@link QueryHost}, in block order whatever order they arrived in), finishes the layer and goes on; after the
 * last layer it samples a token, emits an {@link AnswerToken} and starts the next pass, until EOS, max tokens or
 * a stop string. Then it clears its state and sends the question id on {@link #EXITS}.
 *
 * <p>Only this operator holds the question's and generated tokens' KV: as pages in {@link #OWN_KV}, of which each
 * layer rewrites only the last one(s) it appended to, next to a small pass state (the rows of the pass in
 * progress) in {@link #HOST}; bytes written per generated token are the {@code stateBytesPerToken} metric.
 * Operator-local maps keep the live host and answer objects, so that neither a layer nor a token deserializes or
 * replays anything (only a restore does).
 */
public class QueryHostOperator extends KeyedProcessFunction<String, HostMessage, BlockRequest> {
    public static final OutputTag<AnswerToken> ANSWERS = new OutputTag<>("answers") { };
    public static final OutputTag<String> EXITS = new OutputTag<>("exits") { };

    public static final ValueStateDescriptor<QuestionTask> TASK = new ValueStateDescriptor<>("question",
            QuestionTask.class);
    public static final ValueStateDescriptor<HostProgress> PROGRESS = new ValueStateDescriptor<>("progress",
            HostProgress.class);
    public static final ValueStateDescriptor<byte[]> HOST = new ValueStateDescriptor<>("host-state",
            PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO);
    public static final MapStateDescriptor<Integer, byte[]> PARTIALS = new MapStateDescriptor<>("layer-partials",
            Types.INT, PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO);
    /** The question's own KV as pages (keyed by {@code KvPages.stateKey}): each layer rewrites only its last page. */
    public static final MapStateDescriptor<Integer, byte[]> OWN_KV = new MapStateDescriptor<>("own-kv-pages",
            Types.INT, PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO);
    /**
     * Tokens per page of the host's own KV. Small, since a decode step appends one token per layer and rewrites
     * that token's page: at 16 an 8B-shaped model writes about 34 KB of KV per layer and token.
     */
    static final int OWN_PAGE_TOKENS = 16;

    private final ModelLocation modelLocation;

    private transient ValueState<QuestionTask> task;
    private transient ValueState<HostProgress> progress;
    private transient ValueState<byte[]> hostState;
    private transient MapState<Integer, byte[]> partials;
    private transient MapState<Integer, byte[]> ownKv;
    private transient Model model;
    private transient Transformer transformer;
    private transient Map<String, QueryHost> liveHosts;
    /** The answers being built, live: rebuilt from {@code HostProgress.tokens} only after a restore. */
    private transient Map<String, AnswerBuilder> liveAnswers;
    private transient HostMetrics metrics;

    public QueryHostOperator(ModelLocation model) {
        this.modelLocation = model;
    }

    @Override
    public void open(OpenContext context) {
        task = getRuntimeContext().getState(TASK);
        progress = getRuntimeContext().getState(PROGRESS);
        hostState = getRuntimeContext().getState(HOST);
        partials = getRuntimeContext().getMapState(PARTIALS);
        ownKv = getRuntimeContext().getMapState(OWN_KV);
        model = modelLocation.load();
        transformer = new Transformer(modelLocation.backend(getRuntimeContext()));
        liveHosts = new HashMap<>();
        liveAnswers = new HashMap<>();
        metrics = new HostMetrics(getRuntimeContext().getMetricGroup());
    }

    @Override
    public void processElement(HostMessage message, Context ctx, Collector<BlockRequest> out) throws Exception {
        if (message.isQuestion()) {
            startQuestion(message.task, ctx, out);
        } else {
            acceptPartial(message, ctx, out);
        }
    }

    private void startQuestion(QuestionTask question, Context ctx, Collector<BlockRequest> out) throws Exception {
        if (task.value() != null) {
            // The same question id while the first is still running: answer the newcomer with an error.
            ctx.output(ANSWERS, org.starflink.operators.messages.AnswerErrors.error(question.questionId,
                    question.docId, "question id " + question.questionId + " is already being answered",
                    question.receivedMs));
            ctx.output(EXITS, question.questionId);
            return;
        }
        task.update(question);
        int[] questionTokens = question.tokens;
        QueryHost host = new QueryHost(transformer, question.contextLength,
                questionTokens.length + Math.min(question.maxNewTokens, 1024));
        HostProgress state = new HostProgress();
        state.tokens = new int[0];
        state.passStartedNanos = System.nanoTime();
        metrics.questionStarted();
        send(ctx.getCurrentKey(), question, host, host.start(questionTokens), state, out);
    }

    private void acceptPartial(HostMessage message, Context ctx, Collector<BlockRequest> out) throws Exception {
        QuestionTask question = task.value();
        HostProgress state = progress.value();
        if (question == null || state == null || message.pass != state.pass || message.layer != state.layer) {
            metrics.stalePartial(); // a reply to a question or layer that is no longer waiting
            return;
        }
        if (!partials.contains(message.block)) {
            partials.put(message.block, message.partial);
            state.partialsReceived++;
        }
        if (state.partialsReceived < question.blockCount) {
            progress.update(state);
            return;
        }
        // Every block answered: merge in block order, so that the result never depends on arrival order.
        List<AttentionPartial> ordered = new ArrayList<>(question.blockCount);
        for (int block = 0; block < question.blockCount; block++) {
            ordered.add(PhaseTwoCodec.partialFromBytes(partials.get(block)));
        }
        partials.clear();
        metrics.layerRoundTrip(System.nanoTime() - state.layerSentNanos);
        QueryHost host = host(ctx.getCurrentKey());
        LayerRequest next = host.complete(ordered);
        if (next != null) {
            send(ctx.getCurrentKey(), question, host, next, state, out);
            return;
        }
        finishPass(question, host, state, ctx, out);
    }

    /** After the last layer: sample, emit, and either start the next pass or end the question. */
    private void finishPass(QuestionTask question, QueryHost host, HostProgress state, Context ctx,
                            Collector<BlockRequest> out) throws Exception {
        SamplingParams params = samplingParams(question);
        int step = state.tokens.length;
        int token = new Sampler(params).next(host.logits(), step);
        AnswerBuilder answer = liveAnswers.computeIfAbsent(question.questionId, id -> AnswerBuilder.resume(
                model.tokenizer(), model.config().eosIds(), params, state.tokens));
        AnswerBuilder.Step outcome = answer.add(token);
        long now = System.currentTimeMillis();
        if (step == 0) {
            state.prefillMs = now - question.receivedMs;
            metrics.firstToken(state.prefillMs);
        } else {
            metrics.outputToken(System.nanoTime() - state.passStartedNanos);
            metrics.stateBytesPerToken(state.stateBytesThisPass);
        }
        state.stateBytesThisPass = 0;
        ctx.output(ANSWERS, answerToken(question, step, token, outcome, state.prefillMs, now));
        if (outcome.finish() != null) {
            clear(ctx.getCurrentKey());
            metrics.questionFinished();
            ctx.output(EXITS, question.questionId);
            return;
        }
        state.tokens = Arrays.copyOf(state.tokens, step + 1);
        state.tokens[step] = token;
        state.pass++;
        state.passStartedNanos = System.nanoTime();
        send(ctx.getCurrentKey(), question, host, host.start(new int[] {token}), state, out);
    }

    /** Fans one layer request out to every block of the question's document and saves the state. */
    private void send(String questionId, QuestionTask question, QueryHost host, LayerRequest request,
                      HostProgress state, Collector<BlockRequest> out) throws Exception {
        state.layer = request.layer();
        state.partialsReceived = 0;
        state.layerSentNanos = System.nanoTime();
        // What this layer changed, and no more: the pass's rows (small) and the last page(s) of this layer's KV.
        byte[] passState = host.passState().toBytes();
        long written = passState.length;
        hostState.update(passState);
        for (KvPage page : host.changedKvPages(OWN_PAGE_TOKENS)) {
            byte[] bytes = page.toBytes();
            ownKv.put(KvPages.stateKey(page), bytes);
            written += bytes.length;
        }
        state.stateBytesThisPass += written;
        progress.update(state);
        liveHosts.put(questionId, host);
        byte[] body = PhaseTwoCodec.toBytes(request);
        for (int block = 0; block < question.blockCount; block++) {
            out.collect(new BlockRequest(BlockKeys.of(question.docId, question.version, block), questionId, block,
                    state.pass, request.layer(), body));
        }
    }

    private QueryHost host(String questionId) throws Exception {
        QueryHost host = liveHosts.get(questionId);
        if (host == null) { // after a restore: rebuild from state
            List<KvPage> pages = new ArrayList<>();
            for (byte[] bytes : ownKv.values()) {
                pages.add(KvPage.fromBytes(bytes));
            }
            host = QueryHost.restore(transformer, HostState.fromBytes(hostState.value()).withPages(pages));
            liveHosts.put(questionId, host);
        }
        return host;
    }

    private void clear(String questionId) {
        task.clear();
        progress.clear();
        hostState.clear();
        partials.clear();
        ownKv.clear();
        QueryHost host = liveHosts.remove(questionId);
        if (host != null) {
            host.close();
        }
        liveAnswers.remove(questionId);
    }

    @Override
    public void close() throws Exception {
        if (liveHosts != null) {
            liveHosts.values().forEach(QueryHost::close);
            liveHosts.clear();
        }
        super.close();
    }

    static SamplingParams samplingParams(QuestionTask question) {
        return new SamplingParams(question.maxNewTokens, question.temperature, question.topP, question.seed,
                question.stop == null ? List.of() : List.of(question.stop));
    }

    private static AnswerToken answerToken(QuestionTask question, int index, int token, AnswerBuilder.Step outcome,
                                           long prefillMs, long now) {
        return AnswerToken.newBuilder()
                .setQuestionId(question.questionId)
                .setDocId(question.docId)
                .setIndex(index)
                .setTokenId(token)
                .setText(outcome.delta())
                .setFinal$(outcome.finish() != null)
                .setFinishReason(outcome.finish() == null ? null : wire(outcome.finish()))
                .setError(null)
                .setQuestionReceivedMs(question.receivedMs)
                .setEmittedMs(now)
                .setPrefillMs(prefillMs)
                .setCoverage(question.coverage())
                .build();
    }

    private static org.starflink.schemas.FinishReason wire(FinishReason reason) {
        return switch (reason) {
            case EOS -> org.starflink.schemas.FinishReason.EOS;
            case LENGTH -> org.starflink.schemas.FinishReason.LENGTH;
            case STOP -> org.starflink.schemas.FinishReason.STOP;
        };
    }
}
