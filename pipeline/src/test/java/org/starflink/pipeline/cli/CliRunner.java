package org.starflink.pipeline.cli;

import java.io.PrintWriter;
import java.io.StringWriter;

/** Runs the command line in-process and captures what it printed. */
record CliRunner(int exitCode, String out, String err) {

    static CliRunner run(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code = StarflinkCli.run(args, new PrintWriter(out, true), new PrintWriter(err, true));
        return new CliRunner(code, out.toString(), err.toString());
    }

    /** Asserts a failure with exactly one line on stderr that contains every fragment, and no stack trace. */
    CliRunner assertOneLineError(int expectedExit, String... fragments) {
        String describe = "exit " + exitCode + ", stderr:\n" + err;
        if (exitCode != expectedExit) {
            throw new AssertionError("expected exit " + expectedExit + "; " + describe);
        }
        String firstLine = err.lines().findFirst().orElse("");
        if (!firstLine.startsWith("error: ") || err.contains("\tat ")) {
            throw new AssertionError("expected a one-line error; " + describe);
        }
        for (String fragment : fragments) {
            if (!firstLine.contains(fragment)) {
                throw new AssertionError("error line lacks '" + fragment + "'; " + describe);
            }
        }
        return this;
    }
}
