package org.starflink.engine.backend;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.starflink.engine.testing.RandomModels.maxAbsDiff;

import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.starflink.engine.attention.AttentionPartial;
import org.starflink.engine.backend.djl.DjlBackend;
import org.starflink.engine.forward.KvSpan;
import org.starflink.engine.model.ModelConfig;
import org.starflink.engine.model.ModelWeights;
import org.starflink.engine.testing.RandomModels;

/**
 * Every backend op on random inputs against the reference (llama.cpp's test-backend-ops idea): one harness,
 * each op compared by max absolute difference, for plain Llama, GQA, and llama3 rope scaling + q/k/v biases.
 */
class BackendConsistencyTest {
    private static final double TOLERANCE = 1e-4;

    static Stream<Arguments> configs() {
        return Stream.of(
                Arguments.of("MHA", RandomModels.config(32, 2, 4, 4, 50)),
                Arguments.of("GQA", RandomModels.config(48, 2, 6, 2, 50)),
                Arguments.of("llama3+bias", RandomModels.configWithExtras(64, 2, 8, 2, 50)));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("configs")
    void everyOpMatchesTheReference(String name, ModelConfig config) {
        ModelWeights weights = RandomModels.weights(config, 7);
        try (Backend djl = new DjlBackend(config, weights)) {
            Backend reference = new ReferenceBackend(config, weights);
            Random random = new Random(11);
            int rows = 37;
            int[] tokens = RandomModels.tokens(random, rows, config.vocabSize());
            int[] positions = new int[rows];
            for (int i = 0; i < rows; i++) {
                positions[i] = 1000 + 3 * i; // arbitrary, non-contiguous positions
            }
            float[] x = reference.embed(tokens);
            check("embed", reference.embed(tokens), djl.embed(tokens));
            for (int layer = 0; layer < config.layers(); layer++) {
                QkvProjection expected = reference.projectQkv(layer, x, positions);
                QkvProjection actual = djl.projectQkv(layer, x, positions);
                check("q", expected.q(), actual.q());
                check("k", expected.k(), actual.k());
                check("v", expected.v(), actual.v());

                // Causal by position, with keys from before, inside and after the query rows' range.
                int[] keyPositions = new int[rows];
                for (int i = 0; i < rows; i++) {
                    keyPositions[i] = 995 + 3 * i + (i % 3);
                }
                KvSpan kv = new KvSpan(keyPositions, expected.k(), expected.v(), rows);
                AttentionPartial expectedAttention = reference.attend(expected.q(), positions, kv);
                AttentionPartial actualAttention = djl.attend(expected.q(), positions, kv);
                check("attention output", expectedAttention.output(), actualAttention.output());
                check("attention lse", expectedAttention.lse(), actualAttention.lse());
                // Few rows (decode, phase-2 requests) take the backend's in-place path.
                int[] decodeRows = {positions[0], positions[rows - 1]};
                float[] decodeQ = new float[2 * config.queryWidth()];
                System.arraycopy(expected.q(), 0, decodeQ, 0, config.queryWidth());
                System.arraycopy(expected.q(), (rows - 1) * config.queryWidth(), decodeQ, config.queryWidth(),
                        config.queryWidth());
                AttentionPartial expectedDecode = reference.attend(decodeQ, decodeRows, kv);
                AttentionPartial actualDecode = djl.attend(decodeQ, decodeRows, kv);
                check("decode attention output", expectedDecode.output(), actualDecode.output());
                check("decode attention lse", expectedDecode.lse(), actualDecode.lse());

                float[] next = reference.finishLayer(layer, x, expectedAttention.output());
                check("finishLayer", next, djl.finishLayer(layer, x, expectedAttention.output()));
                x = next;
            }
            check("logits", reference.logits(x), djl.logits(x));
        }
    }

    private static void check(String op, float[] expected, float[] actual) {
        double diff = maxAbsDiff(expected, actual);
        assertTrue(diff <= TOLERANCE, op + " differs by " + diff);
    }
}
