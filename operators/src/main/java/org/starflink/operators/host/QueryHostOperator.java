package org.starflink.operators.host;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
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
import org.starflink.engine.attention.LayerRequest;
import org.starflink.engine.forward.Transformer;
import org.starflink.engine.generate.AnswerBuilder;
import org.starflink.engine.generate.FinishReason;
import org.starflink.engine.generate.Sampler;
import org.starflink.engine.generate.SamplingParams;
import org.starflink.engine.model.Model;
import org.starflink.engine.star.QueryHost;
import org.starflink.engine.wire.HostState;
import org.starflink.engine.wire.KvPage;
import org.starflink.engine.wire.KvPages;
import org.starflink.engine.wire.PhaseTwoCodec;
import org.starflink.operators.messages.AnswerErrors;
import org.starflink.operators.messages.BlockKeys;
import org.starflink.operators.messages.BlockRequest;
import org.starflink.operators.messages.HostMessage;
import org.starflink.operators.messages.QuestionTask;
import org.starflink.operators.model.ModelLocation;
import org.starflink.schemas.AnswerToken;

/**
 * The query host of Star Attention phase 2, keyed by document version ({@link BlockKeys#documentVersion}), inside
 * the per-layer loop. Its questions go through the layers together as one {@link HostBatch}: for every pass (each
 * member's question, or its next generated token) and every layer it sends ONE {@link BlockRequest} to each block
 * of the document, carrying the query rows of every member that covers that block, and gets one bundle back per
 * block subtask with all their partials from that subtask's blocks. Each member merges its own partials exactly
 * with its own KV (the engine's {@link QueryHost}, in block order whatever order they arrived in) and finishes the
 * layer; after the last layer each samples a token and emits an {@link AnswerToken}. Finished members leave (their
 * state cleared, their key on {@link #EXITS}); questions that arrived during the pass join at the next one.
 *
 * <p>Batching changes no number: a member's rows are computed alone at the block ({@code BlockAttention.answerEach})
 * and at the host, so a question's tokens are the same whichever questions shared its passes (replays included).
 *
 * <p>Only this operator holds the questions' and generated tokens' KV: as pages in {@link #OWN_KV}, of which each
 * layer rewrites only the last one(s) it appended to, next to a small pass state per member (the rows of the pass in
 * progress) in {@link #PASS_STATE}; bytes written per generated token are the {@code stateBytesPerToken} metric.
 * An operator-local map keeps each running question's task, engine host and answer in progress, so that a layer
 * reads no state for its questions and a token replays nothing (only a restore does).
 */
public class QueryHostOperator extends KeyedProcessFunction<String, HostMessage, BlockRequest> {
    public static final OutputTag<AnswerToken> ANSWERS = new OutputTag<>("answers") { };
    /** The host key once per finished question: the loop's exit, one per admitted question. */
    public static final OutputTag<String> EXITS = new OutputTag<>("exits") { };

    /** The admitted questions of this document version, running or waiting, by question id. */
    public static final MapStateDescriptor<String, QuestionTask> QUESTIONS = new MapStateDescriptor<>("questions",
            Types.STRING, Types.POJO(QuestionTask.class));
    public static final MapStateDescriptor<String, HostProgress> PROGRESS = new MapStateDescriptor<>(
            "question-progress", Types.STRING, Types.POJO(HostProgress.class));
    /** Per member: the engine's {@link HostState} without KV (the rows of its pass in progress). */
    public static final MapStateDescriptor<String, byte[]> PASS_STATE = new MapStateDescriptor<>("pass-state",
            Types.STRING, PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO);
    /** The questions' own KV as pages, keyed by {@link #pageKey}: each layer rewrites only its last page. */
    public static final MapStateDescriptor<String, byte[]> OWN_KV = new MapStateDescriptor<>("question-kv-pages",
            Types.STRING, PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO);
    public static final ValueStateDescriptor<HostBatch> BATCH = new ValueStateDescriptor<>("batch",
            HostBatch.class);
    /**
     * The layer in flight's bundles of partial batches ({@code PhaseTwoCodec.bundleToBytes}), by first block: those
     * gathered when a checkpoint was taken ({@link GatheredPartials}).
     */
    public static final MapStateDescriptor<Integer, byte[]> PARTIALS = new MapStateDescriptor<>("batch-partials",
            Types.INT, PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO);
    /**
     * Tokens per page of the host's own KV. Small, since a decode step appends one token per layer and rewrites
     * that token's page: at 16 an 8B-shaped model writes about 34 KB of KV per layer and token.
     */
    static final int OWN_PAGE_TOKENS = 16;

    private final ModelLocation modelLocation;
    private final int blockMaxParallelism;

    private transient MapState<String, QuestionTask> questions;
    private transient MapState<String, HostProgress> progress;
    private transient MapState<String, byte[]> passState;
    private transient MapState<String, byte[]> ownKv;
    private transient ValueState<HostBatch> batch;
    private transient GatheredPartials gathered;
    private transient Model model;
    private transient Transformer transformer;
    /** The running questions' live objects per host key and question id: rebuilt from state only after a restore. */
    private transient Map<String, Map<String, LiveQuestion>> live;
    /** Per host key, the keys of its document version's blocks made so far (a key costs a placement search). */
    private transient Map<String, String[]> blockKeys;
    private transient HostMetrics metrics;

    /**
     * @param blockMaxParallelism the block operator's max parallelism, which its keys depend on
     *                            ({@link BlockKeys#of})
     */
    public QueryHostOperator(ModelLocation model, int blockMaxParallelism) {
        this.modelLocation = model;
        this.blockMaxParallelism = blockMaxParallelism;
    }

    @Override
    public void open(OpenContext context) {
        questions = getRuntimeContext().getMapState(QUESTIONS);
        progress = getRuntimeContext().getMapState(PROGRESS);
        passState = getRuntimeContext().getMapState(PASS_STATE);
        ownKv = getRuntimeContext().getMapState(OWN_KV);
        batch = getRuntimeContext().getState(BATCH);
        gathered = new GatheredPartials(getRuntimeContext().getMapState(PARTIALS));
        model = modelLocation.load();
        transformer = new Transformer(modelLocation.backend(getRuntimeContext()));
        live = new HashMap<>();
        blockKeys = new HashMap<>();
        metrics = new HostMetrics(getRuntimeContext().getMetricGroup());
    }

    @Override
    public void processElement(HostMessage message, Context ctx, Collector<BlockRequest> out) throws Exception {
        if (message.isQuestion()) {
            admit(message.task, ctx, out);
        } else {
            acceptPartials(message, ctx, out);
        }
    }

    private void admit(QuestionTask question, Context ctx, Collector<BlockRequest> out) throws Exception {
        String hostKey = ctx.getCurrentKey();
        if (questions.contains(question.questionId)) {
            // The same question id while the first is still running: answer the newcomer with an error.
            ctx.output(ANSWERS, AnswerErrors.error(question.questionId, question.docId, "question id "
                    + question.questionId + " is already being answered", question.receivedMs));
            ctx.output(EXITS, hostKey);
            return;
        }
        questions.put(question.questionId, question);
        HostProgress state = new HostProgress();
        state.tokens = new int[0];
        progress.put(question.questionId, state);
        metrics.questionStarted();
        HostBatch current = batch.value();
        if (current != null) { // a pass is in flight: join at its end
            current.waiting = append(current.waiting, question.questionId);
            batch.update(current);
            return;
        }
        HostBatch first = new HostBatch();
        first.members = new String[0];
        first.waiting = new String[] {question.questionId};
        startPass(hostKey, first, out);
    }

    private void acceptPartials(HostMessage message, Context ctx, Collector<BlockRequest> out) throws Exception {
        HostBatch current = batch.value();
        if (current == null || message.pass != current.pass || message.layer != current.layer) {
            metrics.stalePartial(); // a reply to a pass or layer that is no longer waiting
            return;
        }
        if (message.blockGone != null) {
            endBatch(ctx, current, "block " + message.block + " of " + ctx.getCurrentKey() + " is gone: "
                    + message.blockGone + "; ask again");
            return;
        }
        String hostKey = ctx.getCurrentKey();
        int received = gathered.add(hostKey, message.partials);
        if (received < current.blocks) {
            return;
        }
        metrics.layerRoundTrip(System.nanoTime() - current.layerSentNanos);
        List<LiveQuestion> members = live(hostKey, current.members);
        List<List<AttentionPartial>> byBlock = new ArrayList<>(current.blocks);
        byBlock.addAll(Collections.nCopies(current.blocks, null));
        int messages = 0;
        for (byte[] bundle : gathered.take(hostKey)) {
            PhaseTwoCodec.PartialBundle decoded = PhaseTwoCodec.bundleFromBytes(bundle);
            for (int i = 0; i < decoded.blocks().length; i++) {
                byBlock.set(decoded.blocks()[i], decoded.partials().get(i));
            }
            messages++;
        }
        if (byBlock.contains(null)) { // counted complete, yet a block is missing: a bundle came twice, split anew
            throw new IllegalStateException("layer " + current.layer + " of " + hostKey + " has no partials of block "
                    + byBlock.indexOf(null) + " though " + received + " arrived");
        }
        metrics.layerMessages(messages);
        List<QueryHost> hosts = new ArrayList<>(members.size());
        List<List<AttentionPartial>> orderedPartials = new ArrayList<>(members.size());
        for (int member = 0; member < members.size(); member++) {
            LiveQuestion question = members.get(member);
            // This member's partial from each of its blocks, merged in block order: never arrival order.
            List<AttentionPartial> ordered = new ArrayList<>(question.task.blockCount);
            for (int block = 0; block < question.task.blockCount; block++) {
                ordered.add(byBlock.get(block).get(rowIndex(members, member, block)));
            }
            hosts.add(question.host);
            orderedPartials.add(ordered);
        }
        // every member's layer in one go: their rows share the pass over each weight matrix, their numbers do not
        List<LayerRequest> next = QueryHost.completeEach(hosts, orderedPartials);
        if (next.get(0) != null) { // members share the layer: all continue or all finish the pass
            current.layer++;
            send(hostKey, current, members, next, out);
            return;
        }
        finishPass(hostKey, current, members, ctx, out);
    }

    /**
     * A block the batch needs can no longer answer (its KV expired while the questions waited at the loop's cap, or
     * was retired): every member and every waiting question of this document version ends with the error (the
     * others' blocks are gone the same way), and the host keeps nothing. The layer's other replies arrive stale.
     */
    private void endBatch(Context ctx, HostBatch current, String reason) throws Exception {
        String hostKey = ctx.getCurrentKey();
        for (String[] questionIds : new String[][] {current.members, current.waiting}) {
            for (String questionId : questionIds) {
                QuestionTask question = questions.get(questionId);
                ctx.output(ANSWERS, AnswerErrors.error(questionId, question.docId, reason, question.receivedMs));
                clear(hostKey, questionId);
                metrics.questionFinished();
                ctx.output(EXITS, hostKey);
            }
        }
        gathered.forget(hostKey);
        batch.clear();
        live.remove(hostKey);
        blockKeys.remove(hostKey);
    }

    /** After the last layer: every member samples and emits; the rest and the newcomers start the next pass. */
    private void finishPass(String hostKey, HostBatch current, List<LiveQuestion> members, Context ctx,
                            Collector<BlockRequest> out) throws Exception {
        List<String> continuing = new ArrayList<>();
        long now = System.currentTimeMillis();
        for (LiveQuestion member : members) {
            QuestionTask question = member.task;
            HostProgress state = progress.get(question.questionId);
            SamplingParams params = samplingParams(question);
            int step = state.tokens.length;
            int token = new Sampler(params).next(member.host.logits(), step);
            if (member.answer == null) { // after a restore
                member.answer = AnswerBuilder.resume(model.tokenizer(), model.config().eosIds(), params, state.tokens);
            }
            AnswerBuilder.Step outcome = member.answer.add(token);
            if (step == 0) {
                state.prefillMs = now - question.receivedMs;
                metrics.firstToken(state.prefillMs);
            } else {
                metrics.outputToken(System.nanoTime() - member.passStartedNanos);
                metrics.stateBytesPerToken(member.stateBytesThisPass);
            }
            ctx.output(ANSWERS, answerToken(question, step, token, outcome, state.prefillMs, now));
            if (outcome.finish() != null) {
                clear(hostKey, question.questionId);
                metrics.questionFinished();
                ctx.output(EXITS, hostKey);
                continue;
            }
            state.tokens = Arrays.copyOf(state.tokens, step + 1);
            state.tokens[step] = token;
            progress.put(question.questionId, state);
            continuing.add(question.questionId);
        }
        current.members = continuing.toArray(new String[0]);
        current.pass++;
        startPass(hostKey, current, out);
    }

    /**
     * Starts the next pass of {@code next}: its members' next tokens, then the waiting questions' prompts (as new
     * members, after them). With no member left the host is idle and keeps no batch.
     */
    private void startPass(String hostKey, HostBatch next, Collector<BlockRequest> out) throws Exception {
        List<LiveQuestion> members = new ArrayList<>(live(hostKey, next.members));
        List<LayerRequest> requests = new ArrayList<>();
        for (LiveQuestion member : members) {
            int[] tokens = progress.get(member.task.questionId).tokens;
            requests.add(member.host.start(new int[] {tokens[tokens.length - 1]}));
        }
        Map<String, LiveQuestion> byId = live.get(hostKey);
        for (String newcomer : next.waiting) {
            QuestionTask question = questions.get(newcomer);
            LiveQuestion joining = new LiveQuestion(question, new QueryHost(transformer, question.contextLength,
                    question.tokens.length + Math.min(question.maxNewTokens, 1024)));
            byId.put(newcomer, joining);
            members.add(joining);
            requests.add(joining.host.start(question.tokens));
        }
        next.members = append(next.members, next.waiting);
        next.waiting = new String[0];
        if (members.isEmpty()) {
            batch.clear();
            live.remove(hostKey);
            blockKeys.remove(hostKey);
            return;
        }
        long now = System.nanoTime();
        for (LiveQuestion member : members) {
            member.passStartedNanos = now;
            member.stateBytesThisPass = 0;
        }
        next.layer = 0;
        send(hostKey, next, members, requests, out);
    }

    /**
     * Saves what this layer changed and fans the members' requests out: block b gets the rows of the members that
     * cover it (block count > b), in member order.
     */
    private void send(String hostKey, HostBatch current, List<LiveQuestion> members, List<LayerRequest> requests,
                      Collector<BlockRequest> out) throws Exception {
        int blocks = 0;
        for (LiveQuestion member : members) {
            saveLayer(member);
            blocks = Math.max(blocks, member.task.blockCount);
        }
        current.blocks = blocks;
        current.layerSentNanos = System.nanoTime();
        batch.update(current);
        gathered.layerSent(hostKey);
        metrics.batchQuestions(members.size());
        String[] keys = blockKeys(hostKey, members.get(0).task, blocks);
        // Members cover a prefix of the blocks each: the body changes only where some member's coverage ends.
        byte[] body = null;
        int bodyRows = -1;
        for (int block = blocks - 1; block >= 0; block--) {
            List<LayerRequest> covering = new ArrayList<>(members.size());
            for (int member = 0; member < members.size(); member++) {
                if (members.get(member).task.blockCount > block) {
                    covering.add(requests.get(member));
                }
            }
            if (covering.size() != bodyRows) {
                body = PhaseTwoCodec.requestsToBytes(covering);
                bodyRows = covering.size();
            }
            out.collect(new BlockRequest(keys[block], hostKey, block, blocks, current.pass, current.layer, body));
        }
    }

    /** Before a checkpoint barrier: the partials gathered in the heap go to keyed state ({@link GatheredPartials}). */
    void storeGatheredPartials(Consumer<String> selectKey) throws Exception {
        gathered.store(selectKey);
    }

    private String[] blockKeys(String hostKey, QuestionTask any, int blocks) {
        String[] known = blockKeys.get(hostKey);
        int made = known == null ? 0 : known.length;
        if (made < blocks) {
            String[] grown = known == null ? new String[blocks] : Arrays.copyOf(known, blocks);
            for (int block = made; block < blocks; block++) {
                grown[block] = BlockKeys.of(any.docId, any.version, block, blockMaxParallelism);
            }
            blockKeys.put(hostKey, grown);
            known = grown;
        }
        return known;
    }

    /** What this layer changed for one member, and no more: its pass's rows (small) and its last KV page(s). */
    private void saveLayer(LiveQuestion member) throws Exception {
        String questionId = member.task.questionId;
        byte[] rows = member.host.passState().toBytes();
        long written = rows.length;
        passState.put(questionId, rows);
        for (KvPage page : member.host.changedKvPages(OWN_PAGE_TOKENS)) {
            byte[] bytes = page.toBytes();
            ownKv.put(pageKey(questionId, KvPages.stateKey(page)), bytes);
            written += bytes.length;
        }
        member.stateBytesThisPass += written;
    }

    /**
     * Where member {@code member}'s partial sits in block {@code block}'s partial batch: among the members that
     * cover the block, in member order.
     */
    private static int rowIndex(List<LiveQuestion> members, int member, int block) {
        int index = 0;
        for (int other = 0; other < member; other++) {
            if (members.get(other).task.blockCount > block) {
                index++;
            }
        }
        return index;
    }

    /**
     * The live questions {@code members}, in order; after a restore, rebuilt from their tasks, pass states and KV
     * pages.
     */
    private List<LiveQuestion> live(String hostKey, String[] members) throws Exception {
        Map<String, LiveQuestion> byId = live.computeIfAbsent(hostKey, k -> new HashMap<>());
        if (!Arrays.stream(members).allMatch(byId::containsKey)) {
            Map<String, List<KvPage>> pages = new HashMap<>();
            for (Map.Entry<String, byte[]> entry : ownKv.entries()) {
                pages.computeIfAbsent(questionOf(entry.getKey()), id -> new ArrayList<>())
                        .add(KvPage.fromBytes(entry.getValue()));
            }
            for (String member : members) {
                if (!byId.containsKey(member)) {
                    HostState state = HostState.fromBytes(passState.get(member))
                            .withPages(pages.getOrDefault(member, List.of()));
                    byId.put(member, new LiveQuestion(questions.get(member), QueryHost.restore(transformer, state)));
                }
            }
        }
        List<LiveQuestion> ordered = new ArrayList<>(members.length);
        for (String member : members) {
            ordered.add(byId.get(member));
        }
        return ordered;
    }

    private void clear(String hostKey, String questionId) throws Exception {
        questions.remove(questionId);
        progress.remove(questionId);
        passState.remove(questionId);
        List<String> pageKeys = new ArrayList<>();
        for (String key : ownKv.keys()) {
            if (questionOf(key).equals(questionId)) {
                pageKeys.add(key);
            }
        }
        for (String key : pageKeys) {
            ownKv.remove(key);
        }
        Map<String, LiveQuestion> byId = live.get(hostKey);
        LiveQuestion finished = byId == null ? null : byId.remove(questionId);
        if (finished != null) {
            finished.host.close();
        }
    }

    /** A KV page's state key: question id, then the page's own key (an int: the last '/' separates them). */
    static String pageKey(String questionId, int pageStateKey) {
        return questionId + "/" + pageStateKey;
    }

    private static String questionOf(String pageKey) {
        return pageKey.substring(0, pageKey.lastIndexOf('/'));
    }

    private static String[] append(String[] head, String... tail) {
        String[] joined = Arrays.copyOf(head, head.length + tail.length);
        System.arraycopy(tail, 0, joined, head.length, tail.length);
        return joined;
    }

    @Override
    public void close() throws Exception {
        if (live != null) {
            live.values().forEach(byId -> byId.values().forEach(question -> question.host.close()));
            live.clear();
        }
        super.close();
    }

    /**
     * What the operator keeps of a running question next to its keyed state, so that a layer reads no state for it:
     * its task (never changes), its engine host and its answer in progress. The two meters are for the metrics only
     * and start again after a restore.
     */
    private static final class LiveQuestion {
        final QuestionTask task;
        final QueryHost host;
        /** Null after a restore until the next token: rebuilt from {@code HostProgress.tokens}. */
        AnswerBuilder answer;
        long passStartedNanos;
        long stateBytesThisPass;

        LiveQuestion(QuestionTask task, QueryHost host) {
            this.task = task;
            this.host = host;
        }
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
