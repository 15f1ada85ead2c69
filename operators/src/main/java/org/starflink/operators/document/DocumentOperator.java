package org.starflink.operators.document;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.state.MapState;
import org.apache.flink.api.common.state.MapStateDescriptor;
import org.apache.flink.api.common.state.StateTtlConfig;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.formats.avro.typeutils.AvroTypeInfo;
import org.apache.flink.streaming.api.functions.co.KeyedCoProcessFunction;
import org.apache.flink.util.Collector;
import org.apache.flink.util.OutputTag;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.starflink.engine.model.Model;
import org.starflink.engine.star.BlockLayout;
import org.starflink.operators.messages.AnswerErrors;
import org.starflink.operators.messages.BlockCommand;
import org.starflink.operators.messages.QuestionTask;
import org.starflink.operators.model.ModelLocation;
import org.starflink.schemas.AnswerToken;
import org.starflink.schemas.DocumentChunk;
import org.starflink.schemas.DocumentDelete;
import org.starflink.schemas.DocumentEvent;
import org.starflink.schemas.Question;

/**
 * The catalog of documents, keyed by doc_id: assembles each document from its chunks, cuts it into context blocks
 * as they become stable (block commands to the block operators), and admits questions.
 *
 * <p><b>Documents</b> (first input). Chunks of one (doc, version) are applied in seq order; a chunk that arrives
 * early waits in state (at most {@link #MAX_BUFFERED_CHUNKS} per document; more are dropped and counted), a chunk
 * already applied or already waiting is a duplicate and dropped. Tokenization and block cutting follow the token
 * contract in {@link StableBlockCutter}: a block goes out (ENCODE on {@link #BLOCK_COMMANDS}) as soon as its tokens
 * are stable, the short last block once the last chunk is in. A chunk of a higher version replaces the document:
 * DROP for every block of the old version, then the new version starts from nothing (questions already running on
 * the old version keep reading it: block operators keep dropped blocks readable for a grace period). Chunks of a
 * lower version are ignored. A delete with version >= current drops every block and clears all state of the
 * document; one with a lower version is ignored.
 *
 * <p><b>Questions</b> (second input). A question is answered over the blocks formed from its document's chunks up
 * to the question's Kafka timestamp ({@link LogPrefixAdmission}: the rule, so that a question replayed after a
 * failover sees the same blocks however the two sources interleave): the {@link QuestionTask} carries that catalog
 * (version, blockCount, contextLength N, whether the document was complete), every answer record reports it as its
 * coverage, and later blocks are not part of the answer. While the document streams in and no record of it newer
 * than the question has arrived (or none at all), the question waits in {@link #WAITING}, at most the prefix wait;
 * then it is admitted over what it sees. A question is admitted at once otherwise, unless it asks to wait for the
 * whole document ({@code wait_complete_ms > 0}) and the document is not complete yet (or not there yet): then it waits in
 * {@link #WAITING} until the document is complete (or broken, or deleted) and is admitted then; if that takes
 * longer than it allowed, it gets an error answer saying how far the document got. A question that cannot be answered gets one final error record on {@link
 * #ANSWER_ERRORS}, never an exception: malformed sampling fields, an unknown document, a document without a
 * complete block yet, an empty or broken document, or question + N + max_new_tokens beyond the model's window
 * (unless the operator allows running past it).
 *
 * <p><b>Empty documents</b>: a document whose complete text is blank (context = [BOS] only) has no block; a
 * question about it gets "document X is empty".
 *
 * <p><b>Tokenization</b> ({@link StableBlockCutter}): a new document is tokenized piece by piece at the tokenizer's
 * exact cuts when it has a rule and the job allows it (O(new text) per chunk), else the whole text is re-tokenized on
 * every chunk. Either way the blocks equal those of the whole text's tokens.
 *
 * <p><b>Broken documents</b>: if a whole-text re-tokenization ever stops starting with the tokens already emitted
 * (it should not happen with BPE tokenizers and the hold-back), the document is marked broken and logged; the job keeps
 * running, questions about it get an error answer, a newer version or a delete clears it.
 *
 * <p><b>State</b> (all under the optional idle TTL, refreshed on every write — a document that receives no event
 * for the TTL disappears, even if questions still read it): {@link #DOCUMENT} (the catalog), {@link #TEXT} (the
 * text applied so far) or {@link #TAIL} (the text after the last exact cut and the tokens no block holds yet), only
 * while the document is incomplete, and {@link #PENDING_CHUNKS}. Waiting questions
 * ({@link #WAITING}) are bounded by their own timers instead.
 *
 * <p>Records that break the wire contract (a negative seq, a key that is not the doc_id) never get here: the
 * decoder sends them to the rejected topic ({@code WireContract}).
 */
public class DocumentOperator extends KeyedCoProcessFunction<String, DocumentEvent, Question, QuestionTask> {
    private static final long serialVersionUID = 1L;
    private static final Logger LOG = LoggerFactory.getLogger(DocumentOperator.class);

    /** Out-of-order chunks a document may hold back before further early chunks are dropped. */
    public static final int MAX_BUFFERED_CHUNKS = 10_000;

    public static final OutputTag<BlockCommand> BLOCK_COMMANDS =
            new OutputTag<>("block-commands", TypeInformation.of(BlockCommand.class));
    public static final OutputTag<AnswerToken> ANSWER_ERRORS =
            new OutputTag<>("answer-errors", new AvroTypeInfo<>(AnswerToken.class));

    /** The document's catalog; absent = unknown document. */
    public static final ValueStateDescriptor<DocumentState> DOCUMENT = documentDescriptor();
    /**
     * The text of the chunks applied so far, in seq order, for a document cut the whole-text way; cleared once the
     * document is complete.
     */
    public static final ValueStateDescriptor<String> TEXT = textDescriptor();
    /** For a document cut at exact cuts: the text after the last cut and the final tokens no block holds yet. */
    public static final ValueStateDescriptor<DocumentTail> TAIL = tailDescriptor();
    /** Chunks that arrived before their turn: seq -> text. */
    public static final MapStateDescriptor<Integer, String> PENDING_CHUNKS = pendingDescriptor();
    /** Questions waiting for the document to be complete: question_id -> the question. */
    public static final MapStateDescriptor<String, Question> WAITING = new MapStateDescriptor<>(
            "starflink-document-waiting-questions", Types.STRING, new AvroTypeInfo<>(Question.class));
    /** When each waiting question arrived (epoch millis): question_id -> received. */
    public static final MapStateDescriptor<String, Long> WAITING_SINCE = new MapStateDescriptor<>(
            "starflink-document-waiting-since", Types.STRING, Types.LONG);
    /**
     * The Kafka timestamp of each question that waits for its document's log to pass it ({@link LogPrefixAdmission}):
     * question_id -> timestamp. Absent for questions that wait for the whole document.
     */
    public static final MapStateDescriptor<String, Long> WAITING_TIMESTAMP = new MapStateDescriptor<>(
            "starflink-document-waiting-timestamp", Types.STRING, Types.LONG);

    /** How long a question waits, by default, for its document's log to pass its timestamp. */
    public static final Duration DEFAULT_PREFIX_WAIT = Duration.ofSeconds(10);

    private final ModelLocation modelLocation;
    private final int blockSize;
    private final int anchorSize;
    private final boolean allowBeyondWindow;
    private final Duration idleStateTtl;
    private final int holdBack;
    private final boolean exactCuts;
    private final long prefixWaitMs;

    private transient StableBlockCutter cutter;
    private transient Model model;
    private transient DocumentMetrics metrics;
    private transient ValueState<DocumentState> document;
    private transient ValueState<String> text;
    private transient ValueState<DocumentTail> tail;
    private transient MapState<Integer, String> pending;
    private transient MapState<String, Question> waiting;
    private transient MapState<String, Long> waitingSince;
    private transient MapState<String, Long> waitingTimestamp;

    /**
     * @param modelLocation     the model whose tokenizer and window apply (loaded once per JVM in open())
     * @param layout            block size b and anchor size a
     * @param allowBeyondWindow admit questions whose tokens + N + max_new_tokens exceed the model's window
     * @param idleStateTtl      drop a document's state after this long without a document event; null = never
     * @param exactCuts         tokenize new documents piece by piece at the tokenizer's exact cuts when it has a
     *                          rule (else, or when false, re-tokenize the whole text on every chunk)
     */
    public DocumentOperator(ModelLocation modelLocation, BlockLayout layout, boolean allowBeyondWindow,
                            Duration idleStateTtl, boolean exactCuts) {
        this(modelLocation, layout, allowBeyondWindow, idleStateTtl, exactCuts, DEFAULT_PREFIX_WAIT);
    }

    /**
     * @param prefixWait how long a question waits at most for its document's log to pass its timestamp
     *                   ({@link LogPrefixAdmission}); then it is admitted over what it sees of the catalog by then
     */
    public DocumentOperator(ModelLocation modelLocation, BlockLayout layout, boolean allowBeyondWindow,
                            Duration idleStateTtl, boolean exactCuts, Duration prefixWait) {
        this(modelLocation, layout, allowBeyondWindow, idleStateTtl, exactCuts, prefixWait,
                StableBlockCutter.DEFAULT_HOLD_BACK);
    }

    /** With another hold-back for the whole-text way: only tests use it (0 provokes a broken document). */
    DocumentOperator(ModelLocation modelLocation, BlockLayout layout, boolean allowBeyondWindow,
                     Duration idleStateTtl, boolean exactCuts, Duration prefixWait, int holdBack) {
        if (idleStateTtl != null && (idleStateTtl.isZero() || idleStateTtl.isNegative())) {
            throw new IllegalArgumentException("idle state TTL must be positive, got " + idleStateTtl);
        }
        if (prefixWait.isNegative()) {
            throw new IllegalArgumentException("prefix wait must be >= 0, got " + prefixWait);
        }
        this.prefixWaitMs = prefixWait.toMillis();
        this.modelLocation = modelLocation;
        this.blockSize = layout.blockSize();
        this.anchorSize = layout.anchorSize();
        this.allowBeyondWindow = allowBeyondWindow;
        this.idleStateTtl = idleStateTtl;
        this.holdBack = holdBack;
        this.exactCuts = exactCuts;
    }

    @Override
    public void open(OpenContext openContext) {
        model = modelLocation.load();
        cutter = new StableBlockCutter(model.tokenizer(), model.config().bosId(),
                new BlockLayout(blockSize, anchorSize), holdBack);
        metrics = new DocumentMetrics(getRuntimeContext().getMetricGroup());
        // Fresh descriptors: TTL is per operator instance, the public constants stay untouched.
        ValueStateDescriptor<DocumentState> documentDescriptor = withTtl(documentDescriptor());
        ValueStateDescriptor<String> textDescriptor = withTtl(textDescriptor());
        ValueStateDescriptor<DocumentTail> tailDescriptor = withTtl(tailDescriptor());
        MapStateDescriptor<Integer, String> pendingDescriptor = withTtl(pendingDescriptor());
        document = getRuntimeContext().getState(documentDescriptor);
        text = getRuntimeContext().getState(textDescriptor);
        tail = getRuntimeContext().getState(tailDescriptor);
        pending = getRuntimeContext().getMapState(pendingDescriptor);
        waiting = getRuntimeContext().getMapState(WAITING);
        waitingSince = getRuntimeContext().getMapState(WAITING_SINCE);
        waitingTimestamp = getRuntimeContext().getMapState(WAITING_TIMESTAMP);
    }

    /** The counters (for tests). */
    DocumentMetrics metrics() {
        return metrics;
    }

    // ---------------------------------------------------------------------------------------------- documents

    @Override
    public void processElement1(DocumentEvent event, Context ctx, Collector<QuestionTask> out) throws Exception {
        String docId = ctx.getCurrentKey();
        DocumentState state = document.value();
        if (event.getBody() instanceof DocumentDelete) {
            onDelete(docId, event.getVersion(), state, ctx);
        } else if (event.getBody() instanceof DocumentChunk chunk) {
            onChunk(docId, event.getVersion(), chunk, LogPrefixAdmission.timestampOf(ctx.timestamp()), state, ctx);
        } else {
            throw new IllegalStateException("unknown document event body " + event.getBody());
        }
        if (!waiting.isEmpty()) {
            admitWaitingIfReady(docId, ctx, out);
        }
    }

    private void onDelete(String docId, long version, DocumentState state, Context ctx) throws Exception {
        if (state == null) {
            LOG.debug("delete of unknown document {} (version {}) ignored", docId, version);
            return;
        }
        if (version < state.version) {
            metrics.chunksStaleVersion.inc();
            LOG.info("delete of document {} version {} ignored: current version is {}", docId, version,
                    state.version);
            return;
        }
        dropEmittedBlocks(docId, state, ctx);
        clearAll();
        LOG.info("document {} deleted (version {})", docId, version);
    }

    /** @param timestamp the chunk's Kafka record timestamp ({@link LogPrefixAdmission#UNTIMED} if none) */
    private void onChunk(String docId, long version, DocumentChunk chunk, long timestamp, DocumentState state,
                         Context ctx) throws Exception {
        int seq = chunk.getSeq();
        if (state != null && version < state.version) {
            metrics.chunksStaleVersion.inc();
            return;
        }
        if (state == null || version > state.version) {
            if (state != null) {
                LOG.info("document {}: version {} replaces version {}", docId, version, state.version);
                dropEmittedBlocks(docId, state, ctx);
            }
            clearAll(); // also leftovers whose TTL outlived the catalog's
            state = DocumentState.start(version, exactCuts && cutter.hasExactCuts(), timestamp);
        }
        // Every record of the version counts, whatever becomes of it: it decides questions older than it.
        LogPrefixAdmission.recordArrived(state, timestamp);
        if (seq < state.nextSeq || pending.contains(seq)) {
            metrics.chunksDuplicate.inc();
            document.update(state);
            return;
        }
        if (state.broken || (state.lastSeq >= 0 && seq > state.lastSeq)) {
            metrics.chunksDropped.inc();
            LOG.warn("document {} version {}: chunk {} dropped ({})", docId, version, seq,
                    state.broken ? "document is broken" : "beyond the last chunk " + state.lastSeq);
            document.update(state);
            return;
        }
        if (chunk.getLast()) {
            if (state.lastSeq >= 0) { // a second, earlier "last": the later chunks already buffered are orphans
                LOG.warn("document {} version {}: chunk {} is marked last, but so was chunk {}; using {}", docId,
                        version, seq, state.lastSeq, seq);
            }
            state.lastSeq = seq;
        }
        if (seq != state.nextSeq) {
            bufferEarlyChunk(docId, state, seq, chunk.getText());
            document.update(state);
            return;
        }
        // One read of what earlier chunks left: the tail after the last exact cut, or the whole text so far.
        DocumentTail tailBefore = state.exactCuts ? tail.value() : null;
        String textBefore = state.exactCuts ? null : text.value();
        if (state.nextSeq > 0 && tailBefore == null && textBefore == null) {
            // Only possible when the text's TTL ran out before the catalog's: its start is gone for good.
            markBroken(docId, state, "the text of its first " + state.nextSeq + " chunks expired");
            return;
        }
        StringBuilder applied = new StringBuilder(chunk.getText());
        state.nextSeq++;
        metrics.chunksApplied.inc();
        String next;
        while ((next = pending.get(state.nextSeq)) != null) {
            pending.remove(state.nextSeq);
            state.bufferedChunks--;
            applied.append(next);
            state.nextSeq++;
            metrics.chunksApplied.inc();
        }
        if (state.lastSeq >= 0 && state.nextSeq > state.lastSeq) {
            state.complete = true;
        }
        cutBlocks(docId, state, tailBefore, textBefore, applied.toString(), ctx);
    }

    private void bufferEarlyChunk(String docId, DocumentState state, int seq, String chunkText) throws Exception {
        if (state.bufferedChunks >= MAX_BUFFERED_CHUNKS) {
            metrics.chunksDropped.inc();
            LOG.warn("document {} version {}: {} chunks already wait for chunk {}; chunk {} dropped", docId,
                    state.version, state.bufferedChunks, state.nextSeq, seq);
            return;
        }
        pending.put(seq, chunkText);
        state.bufferedChunks++;
        metrics.chunksOutOfOrderBuffered.inc();
    }

    /**
     * Tokenizes what the applied chunks made final (at exact cuts, or the whole text again), emits the blocks that
     * became stable, and stores the new catalog.
     */
    private void cutBlocks(String docId, DocumentState state, DocumentTail tailBefore, String textBefore,
                           String applied, Context ctx) throws Exception {
        String textSoFar = null;
        StableBlockCutter.Result result;
        if (state.exactCuts) {
            result = cutter.advance(tailBefore == null ? new DocumentTail() : tailBefore, applied, state.complete,
                    state.progress());
        } else {
            textSoFar = textBefore == null ? applied : textBefore + applied;
            result = cutter.advance(textSoFar, state.complete, state.progress());
        }
        if (result.isBroken()) {
            markBroken(docId, state, result.broken());
            return;
        }
        for (StableBlockCutter.NewBlock block : result.blocks()) {
            ctx.output(BLOCK_COMMANDS, BlockCommand.encode(docId, state.version, block.index(), block.start(),
                    block.tokens(), block.anchor()));
            metrics.blocksEmitted.inc();
        }
        LogPrefixAdmission.blocksEmitted(state, result.blocks().size(), state.complete);
        state.setProgress(result.progress());
        if (state.complete) {
            // Everything is emitted: the text and any chunk beyond the last one are no longer needed.
            clearText();
            pending.clear();
            state.bufferedChunks = 0;
            if (result.empty()) {
                LOG.info("document {} version {} is empty: no block", docId, state.version);
            }
        } else if (state.exactCuts) {
            tail.update(result.tail());
        } else {
            text.update(textSoFar);
        }
        document.update(state);
    }

    private void markBroken(String docId, DocumentState state, String reason) throws Exception {
        LOG.error("document {} version {} is broken: {}; questions about it get an error answer until a newer "
                + "version or a delete arrives", docId, state.version, reason);
        metrics.documentsBroken.inc();
        state.broken = true;
        state.bufferedChunks = 0;
        clearText();
        pending.clear();
        document.update(state);
    }

    private void dropEmittedBlocks(String docId, DocumentState state, Context ctx) {
        for (int block = 0; block < state.blockCount; block++) {
            ctx.output(BLOCK_COMMANDS, BlockCommand.drop(docId, state.version, block));
            metrics.blocksDropped.inc();
        }
    }

    private void clearAll() {
        document.clear();
        clearText();
        pending.clear();
    }

    private void clearText() {
        text.clear();
        tail.clear();
    }

    // ---------------------------------------------------------------------------------------------- questions

    @Override
    public void processElement2(Question question, Context ctx, Collector<QuestionTask> out) throws Exception {
        long receivedMs = ctx.timerService().currentProcessingTime();
        String problem = QuestionChecks.problem(question);
        DocumentState state = document.value();
        if (problem == null && question.getWaitCompleteMs() > 0 && !readyForWaiters(state)) {
            startWaiting(question, receivedMs, null, ctx);
            metrics.questionsWaited.inc();
            return;
        }
        long timestamp = question.getWaitCompleteMs() > 0 ? LogPrefixAdmission.UNTIMED
                : LogPrefixAdmission.timestampOf(ctx.timestamp());
        if (problem == null && !LogPrefixAdmission.decided(state, timestamp)) {
            // The document is streaming in (or not there yet) and no record of it newer than the question has
            // arrived yet.
            startWaiting(question, receivedMs, timestamp, ctx);
            metrics.questionsHeldForPrefix.inc();
            return;
        }
        admit(question, problem, state, timestamp, receivedMs, ctx, out);
    }

    /**
     * @param timestamp the question's Kafka timestamp if it waits for the log to pass it; null if it waits for the
     *                  whole document
     */
    private void startWaiting(Question question, long receivedMs, Long timestamp, Context ctx) throws Exception {
        waiting.put(question.getQuestionId(), question);
        waitingSince.put(question.getQuestionId(), receivedMs);
        if (timestamp != null) {
            waitingTimestamp.put(question.getQuestionId(), timestamp);
        }
        ctx.timerService().registerProcessingTimeTimer(receivedMs + maxWaitMs(question, timestamp != null));
    }

    private long maxWaitMs(Question question, boolean forPrefix) {
        return forPrefix ? prefixWaitMs : question.getWaitCompleteMs();
    }

    /** Complete, broken or empty: nothing more is coming for a question that waits for the whole document. */
    private static boolean readyForWaiters(DocumentState state) {
        return state != null && (state.complete || state.broken);
    }

    /**
     * After a document event: admits every waiting question that can be decided now: those waiting for the whole
     * document once it is complete, broken or gone; those waiting for the log to pass their timestamp once it did
     * (or the document is complete, broken or gone).
     */
    private void admitWaitingIfReady(String docId, Context ctx, Collector<QuestionTask> out) throws Exception {
        DocumentState state = document.value();
        for (String questionId : waitingQuestionIds()) {
            Long timestamp = waitingTimestamp.get(questionId);
            // No state after a document event: it was a delete. Nothing more is coming for any waiter.
            boolean ready = state == null || (timestamp == null ? readyForWaiters(state)
                    : LogPrefixAdmission.decided(state, timestamp));
            if (!ready) {
                continue; // still streaming (a newer version starts over: its waiters wait for it)
            }
            Question question = waiting.get(questionId);
            long receivedMs = waitingSince.get(questionId);
            stopWaiting(questionId);
            admit(question, state == null ? "document " + docId + " was deleted while the question waited" : null,
                    state, timestamp == null ? LogPrefixAdmission.UNTIMED : timestamp, receivedMs, ctx, out);
        }
    }

    /**
     * A waiting question's time is up. One that waited for the whole document gets an error answer that says how
     * far the document got; one that waited for the log to pass its timestamp is admitted over what it sees of the
     * catalog now: the one case in which its answer depends on when the job read the document's records.
     */
    @Override
    public void onTimer(long timestamp, OnTimerContext ctx, Collector<QuestionTask> out) throws Exception {
        String docId = ctx.getCurrentKey();
        DocumentState state = document.value();
        for (String questionId : waitingQuestionIds()) {
            Question question = waiting.get(questionId);
            long receivedMs = waitingSince.get(questionId);
            Long questionTimestamp = waitingTimestamp.get(questionId);
            if (receivedMs + maxWaitMs(question, questionTimestamp != null) > timestamp) {
                continue; // another question's timer
            }
            stopWaiting(questionId);
            if (questionTimestamp != null) {
                metrics.questionsPrefixWaitExpired.inc();
                LOG.warn("question {} about document {}: no record of it newer than the question arrived within {} "
                        + "ms; admitted over what it sees now", questionId, docId, prefixWaitMs);
                admit(question, null, state, questionTimestamp, receivedMs, ctx, out);
                continue;
            }
            String progress = state == null ? "no chunk of it has arrived"
                    : "version " + state.version + " has " + state.blockCount + " blocks (" + state.emittedTokens
                    + " tokens) so far, its last chunk has not arrived";
            metrics.questionsRejected.inc();
            ctx.output(ANSWER_ERRORS, AnswerErrors.error(questionId, docId, "document " + docId
                    + " is still incomplete after waiting " + question.getWaitCompleteMs() + " ms: " + progress,
                    receivedMs));
        }
    }

    private List<String> waitingQuestionIds() throws Exception {
        List<String> ids = new ArrayList<>();
        waiting.keys().forEach(ids::add);
        return ids;
    }

    private void stopWaiting(String questionId) throws Exception {
        waiting.remove(questionId);
        waitingSince.remove(questionId);
        waitingTimestamp.remove(questionId);
    }

    /**
     * Answers the question now, over what a question of {@code timestamp} sees of the catalog
     * ({@link LogPrefixAdmission#view}), or with an error answer.
     */
    private void admit(Question question, String problem, DocumentState state, long timestamp, long receivedMs,
                       Context ctx, Collector<QuestionTask> out) throws Exception {
        String docId = question.getDocId();
        LogPrefixAdmission.View view = state == null ? null : LogPrefixAdmission.view(state, timestamp, blockSize);
        if (problem == null) {
            problem = documentProblem(docId, state, view);
        }
        // Tokenized here, once: the window check needs the count and the query host the tokens.
        int[] questionTokens = problem == null ? model.tokenizer().encode(question.getText()) : null;
        if (problem == null && questionTokens.length == 0) {
            problem = "the question has no tokens";
        }
        if (problem == null) {
            problem = windowProblem(questionTokens.length, question, view);
        }
        if (problem != null) {
            metrics.questionsRejected.inc();
            ctx.output(ANSWER_ERRORS, AnswerErrors.error(question.getQuestionId(), docId, problem, receivedMs));
            return;
        }
        metrics.questionsAccepted.inc();
        if (idleStateTtl != null) {
            // The blocks' idle TTL starts again now: the question may wait at the loop's cap before it asks them.
            for (int b = 0; b < view.blockCount(); b++) {
                ctx.output(BLOCK_COMMANDS, BlockCommand.touch(docId, state.version, b));
            }
        }
        out.collect(task(question, questionTokens, docId, state, view, receivedMs));
    }

    private static String documentProblem(String docId, DocumentState state, LogPrefixAdmission.View view) {
        if (state == null || view == null) {
            return "unknown document " + docId; // or its version began after the question
        }
        if (state.broken) {
            return "document " + docId + " (version " + state.version + ") is broken: its tokenization was "
                    + "inconsistent; send a new version";
        }
        if (state.isEmpty()) {
            return "document " + docId + " is empty";
        }
        if (view.blockCount() == 0) {
            return "document " + docId + " has no complete block yet";
        }
        return null;
    }

    private String windowProblem(int questionTokens, Question question, LogPrefixAdmission.View view) {
        if (allowBeyondWindow) {
            return null;
        }
        int window = model.config().maxPositions();
        long total = (long) questionTokens + view.contextLength() + question.getMaxNewTokens();
        if (total > window) {
            return "question of " + questionTokens + " tokens + context of " + view.contextLength() + " tokens + "
                    + question.getMaxNewTokens() + " new tokens = " + total
                    + " exceeds the model's context window of " + window;
        }
        return null;
    }

    private static QuestionTask task(Question question, int[] tokens, String docId, DocumentState state,
                                     LogPrefixAdmission.View view, long receivedMs) {
        QuestionTask task = new QuestionTask();
        task.questionId = question.getQuestionId();
        task.tokens = tokens;
        task.docId = docId;
        task.version = state.version;
        task.text = question.getText();
        task.maxNewTokens = question.getMaxNewTokens();
        task.temperature = question.getTemperature();
        task.topP = question.getTopP();
        task.seed = question.getSeed();
        List<String> stop = question.getStop();
        task.stop = stop == null ? new String[0] : stop.toArray(String[]::new);
        task.contextLength = view.contextLength();
        task.blockCount = view.blockCount();
        task.documentComplete = view.complete();
        task.receivedMs = receivedMs;
        return task;
    }

    // ---------------------------------------------------------------------------------------------- state

    private static ValueStateDescriptor<DocumentState> documentDescriptor() {
        return new ValueStateDescriptor<>("starflink-document", TypeInformation.of(DocumentState.class));
    }

    private static ValueStateDescriptor<String> textDescriptor() {
        return new ValueStateDescriptor<>("starflink-document-text", Types.STRING);
    }

    private static ValueStateDescriptor<DocumentTail> tailDescriptor() {
        return new ValueStateDescriptor<>("starflink-document-tail", TypeInformation.of(DocumentTail.class));
    }

    private static MapStateDescriptor<Integer, String> pendingDescriptor() {
        return new MapStateDescriptor<>("starflink-document-pending-chunks", Types.INT, Types.STRING);
    }

    private <D extends org.apache.flink.api.common.state.StateDescriptor<?, ?>> D withTtl(D descriptor) {
        if (idleStateTtl != null) {
            descriptor.enableTimeToLive(StateTtlConfig.newBuilder(idleStateTtl)
                    .updateTtlOnCreateAndWrite()
                    .neverReturnExpired()
                    .build());
        }
        return descriptor;
    }

    @Override
    public String toString() {
        return "DocumentOperator(b=" + blockSize + ", a=" + anchorSize + ", allowBeyondWindow=" + allowBeyondWindow
                + ", ttl=" + idleStateTtl + ", exactCuts=" + exactCuts + ", model=" + modelLocation + ")";
    }
}
