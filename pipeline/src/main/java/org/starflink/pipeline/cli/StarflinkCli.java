package org.starflink.pipeline.cli;

import java.io.PrintWriter;
import org.starflink.engine.EngineException;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * The {@code starflink} command. Exit codes: 0 success, 1 a problem with the input (bad checkpoint, prompt,
 * question...), 2 a bad command line, 70 an internal error. Every error is one line on stderr.
 */
@Command(name = "starflink", mixinStandardHelpOptions = true, version = "starflink 0.1.0",
        description = "Star Attention long-context inference as an Apache Flink streaming job.",
        subcommands = {GenerateCommand.class, EvalCommand.class, RunCommand.class, IngestCommand.class,
                AskCommand.class})
public final class StarflinkCli {
    public static final int EXIT_INPUT_ERROR = 1;
    public static final int EXIT_USAGE = 2;
    public static final int EXIT_INTERNAL = 70;

    public static void main(String[] args) {
        System.exit(run(args, new PrintWriter(System.out, true), new PrintWriter(System.err, true)));
    }

    /** Runs the command line with the given streams; returns the exit code. */
    public static int run(String[] args, PrintWriter out, PrintWriter err) {
        CommandLine commandLine = new CommandLine(new StarflinkCli());
        commandLine.setOut(out);
        commandLine.setErr(err);
        commandLine.setParameterExceptionHandler((e, a) -> {
            err.println("error: " + e.getMessage());
            err.println("(try '" + e.getCommandLine().getCommandSpec().qualifiedName() + " --help')");
            return EXIT_USAGE;
        });
        commandLine.setExecutionExceptionHandler((e, cmd, parsed) -> {
            if (e instanceof EngineException || e instanceof UsageException) {
                err.println("error: " + e.getMessage());
                return e instanceof UsageException ? EXIT_USAGE : EXIT_INPUT_ERROR;
            }
            err.println("error: internal: " + e);
            e.printStackTrace(err);
            return EXIT_INTERNAL;
        });
        return commandLine.execute(args);
    }

    /** A combination of options that makes no sense; reported like a parse error. */
    static final class UsageException extends RuntimeException {
        UsageException(String message) {
            super(message);
        }
    }
}
