package org.starflink.pipeline.cli;

import java.util.function.IntConsumer;
import org.starflink.engine.EngineException;
import org.starflink.engine.forward.Transformer;
import org.starflink.engine.generate.GenerationResult;
import org.starflink.engine.generate.Generator;
import org.starflink.engine.generate.GlobalSession;
import org.starflink.engine.model.Model;
import org.starflink.engine.star.LongContextGenerator;

/** Runs {@link GenerateRequest}s on one loaded model; shared by the single and the batch form of generate. */
final class RequestExecutor {
    private final Model model;
    private final Transformer transformer;
    private final LongContextGenerator longContext;
    private final boolean allowBeyondWindow;

    RequestExecutor(Model model, Transformer transformer, boolean allowBeyondWindow) {
        this.model = model;
        this.transformer = transformer;
        this.longContext = new LongContextGenerator(model, transformer);
        this.allowBeyondWindow = allowBeyondWindow;
    }

    GenerationResult execute(GenerateRequest request, IntConsumer onToken) {
        if (request.prompt() != null) {
            return generateFromPrompt(request, onToken);
        }
        if (request.context() == null || request.question() == null) {
            throw new EngineException("a request needs a prompt, or a context and a question");
        }
        int[] context = longContext.contextTokens(request.context());
        int[] question = longContext.questionTokens(request.question());
        return longContext.generate(context, question, LongContextGenerator.layoutFor(request.mode(),
                request.blockSize(), request.anchorSize(), context.length), request.params(), allowBeyondWindow,
                onToken);
    }

    private GenerationResult generateFromPrompt(GenerateRequest request, IntConsumer onToken) {
        if (request.prompt().isEmpty()) {
            throw new EngineException("the prompt is empty");
        }
        int[] prompt = longContext.contextTokens(request.prompt()); // the same contract: BOS + tokenize(text)
        longContext.checkWindow(prompt.length, request.params().maxNewTokens(), allowBeyondWindow);
        try (GlobalSession session = new GlobalSession(transformer, prompt.length + request.params().maxNewTokens())) {
            return new Generator(model.tokenizer(), model.config().eosIds()).generate(session, prompt,
                    request.params(), onToken);
        }
    }
}
