package org.starflink.pipeline.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.starflink.engine.testing.SharedModels;

/**
 * {@code starflink eval} on stories260K (which cannot retrieve facts: the accuracy is not the point) at contexts of
 * several blocks: every cell is reported and Star's logits differ from global's; and on our own model, which
 * retrieves needles, the accuracy is the one docs/accuracy.md reports (every mode answers a 2K needle).
 */
class EvalCommandTest {

    @Test
    void reportsAccuracyAndStarVsGlobalAgreementForEveryCell(@TempDir Path tmp) throws Exception {
        Path json = tmp.resolve("eval.json");
        Path csv = tmp.resolve("eval.csv");
        CliRunner result = CliRunner.run("eval", "--model",
                SharedModels.stories260KDir().resolve("stories260K.bin").toString(), "--tasks", "niah_single,cwe",
                "--lengths", "600", "--samples", "1", "--block-size", "128", "--max-new-tokens", "8",
                "--allow-beyond-window", "--json", json.toString(), "--csv", csv.toString());
        assertEquals(0, result.exitCode(), result.err());
        assertTrue(result.err().contains("[2/2] cwe @600"), result.err()); // progress
        JsonNode cells = new ObjectMapper().readTree(json.toFile());
        assertEquals(2 * 3, cells.size()); // 2 tasks x (global, star-N/4, star-128)
        for (JsonNode cell : cells) {
            if (!cell.get("mode").asText().equals("global")) { // global is the baseline of these two columns
                assertTrue(cell.get("mean_abs_logit_diff").asDouble() > 1e-4, "Star should differ from global: "
                        + cell);
            }
        }
        List<String> lines = Files.readAllLines(csv);
        assertEquals(7, lines.size());
        assertTrue(result.out().contains("star-N/4"), result.out());
    }

    @Test
    void ourModelFindsTheNeedleInEveryMode(@TempDir Path tmp) throws Exception {
        Path json = tmp.resolve("eval.json");
        Path model = Path.of(System.getProperty("starflink.project.dir", ".."), "models/starflink-synth-14m");
        CliRunner result = CliRunner.run("eval", "--model", model.toString(), "--tasks", "niah_single",
                "--lengths", "2048", "--samples", "1", "--json", json.toString());
        assertEquals(0, result.exitCode(), result.err());
        JsonNode cells = new ObjectMapper().readTree(json.toFile());
        assertEquals(3, cells.size(), cells.toString());
        for (JsonNode cell : cells) {
            assertEquals(1.0, cell.get("accuracy").asDouble(), "the needle is found: " + cell);
        }
    }

    /** Instances 0 and 1 run separately (--first-sample) add up to the run of both: a cell can be extended. */
    @Test
    void firstSampleExtendsAnEarlierRunWithTheNextInstances(@TempDir Path tmp) throws Exception {
        double[] diffs = new double[3];
        String[][] runs = {{"--samples", "2"}, {"--samples", "1"}, {"--samples", "1", "--first-sample", "1"}};
        for (int r = 0; r < runs.length; r++) {
            Path json = tmp.resolve("eval" + r + ".json");
            List<String> args = new ArrayList<>(List.of("eval", "--model",
                    SharedModels.stories260KDir().resolve("stories260K.bin").toString(), "--tasks", "niah_single",
                    "--lengths", "400", "--block-size", "128", "--max-new-tokens", "2", "--json", json.toString()));
            args.addAll(List.of(runs[r]));
            CliRunner result = CliRunner.run(args.toArray(String[]::new));
            assertEquals(0, result.exitCode(), result.err());
            for (JsonNode cell : new ObjectMapper().readTree(json.toFile())) {
                if (cell.get("mode").asText().equals("star-N/4")) {
                    diffs[r] = cell.get("mean_abs_logit_diff").asDouble();
                }
            }
        }
        assertTrue(Math.abs(diffs[1] - diffs[2]) > 1e-6, "instances 0 and 1 should differ: " + diffs[1]);
        assertEquals(diffs[0], (diffs[1] + diffs[2]) / 2, 1e-6);
    }

    @Test
    void refusesLengthsBeyondTheWindowUnlessAllowed() {
        CliRunner.run("eval", "--model", SharedModels.stories260KDir().resolve("stories260K.bin").toString(),
                "--lengths", "1024").assertOneLineError(1, "exceeds the model's context window of 512");
        CliRunner.run("eval", "--model", SharedModels.stories260KDir().resolve("stories260K.bin").toString(),
                "--tasks", "nonsense").assertOneLineError(2, "nonsense");
        CliRunner.run("eval", "--first-sample", "-1").assertOneLineError(2, "--first-sample must be >= 0");
    }
}
