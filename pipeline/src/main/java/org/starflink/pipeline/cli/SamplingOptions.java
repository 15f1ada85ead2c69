package org.starflink.pipeline.cli;

import java.util.ArrayList;
import java.util.List;
import org.starflink.engine.generate.SamplingParams;
import picocli.CommandLine.Option;

/** Sampling and stopping options. */
final class SamplingOptions {
    @Option(names = "--max-new-tokens", paramLabel = "N", defaultValue = "128",
            description = "Most tokens to generate, EOS included. Default: ${DEFAULT-VALUE}.")
    int maxNewTokens;

    @Option(names = "--temperature", paramLabel = "T", defaultValue = "0",
            description = "0 = greedy. Default: ${DEFAULT-VALUE}.")
    double temperature;

    @Option(names = "--top-p", paramLabel = "P", defaultValue = "1", description = "Nucleus mass in (0, 1].")
    double topP;

    @Option(names = "--seed", paramLabel = "S", defaultValue = "0", description = "Sampler seed.")
    long seed;

    @Option(names = "--stop", paramLabel = "TEXT", description = "Stop once the text contains this (repeatable).")
    List<String> stop = new ArrayList<>();

    SamplingParams params() {
        return new SamplingParams(maxNewTokens, temperature, topP, seed, stop);
    }
}
