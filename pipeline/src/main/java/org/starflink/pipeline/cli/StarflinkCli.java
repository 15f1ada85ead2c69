package org.starflink.pipeline.cli;

import java.io.PrintWriter;
import org.starflink.engine.EngineException;
import org.starflink.pipeline.client.ClientTimeoutException;
import org.starflink.pipeline.client.KafkaUnavailableException;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * The {@code starflink} command. Every expected failure is one line on stderr ({@code error: ...}) and one of
 * these exit codes (README, "Exit codes"); only a bug prints a stack trace.
 */
@Command(name = "starflink", mixinStandardHelpOptions = true, version = "starflink 0.1.0",
        description = "Star Attention long-context inference as an Apache Flink streaming job.",
        subcommands = {GenerateCommand.class, EvalCommand.class, RunCommand.class, IngestCommand.class,
                AskCommand.class, DeleteCommand.class, TaskCommand.class})
public final class StarflinkCli {
    /** A problem with the input: no such file, a bad checkpoint, a question answered with an error. */
    public static final int EXIT_INPUT_ERROR = 1;
    /** A bad command line. */
    public static final int EXIT_USAGE = 2;
    /** Kafka cannot be reached, a topic is missing, or the broker did not confirm a record. */
    public static final int EXIT_UNAVAILABLE = 3;
    /** What the command waited for (an answer, a document being ready) did not come in time. */
    public static final int EXIT_TIMEOUT = 4;
    /** Something else holds what the command needs: a running starflink on the data directory, a port. */
    public static final int EXIT_CONFLICT = 5;
    /** A bug: the message and a stack trace. */
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
            int code = exitCode(e);
            if (code != EXIT_INTERNAL) {
                err.println("error: " + e.getMessage());
                return code;
            }
            err.println("error: internal: " + e);
            e.printStackTrace(err);
            return EXIT_INTERNAL;
        });
        return commandLine.execute(args);
    }

    /** The one place where a kind of failure becomes an exit code. */
    static int exitCode(Exception e) {
        if (e instanceof Failure failure) {
            return failure.exitCode;
        }
        if (e instanceof UsageException) {
            return EXIT_USAGE;
        }
        if (e instanceof EngineException) {
            return EXIT_INPUT_ERROR;
        }
        if (e instanceof KafkaUnavailableException) {
            return EXIT_UNAVAILABLE;
        }
        if (e instanceof ClientTimeoutException) {
            return EXIT_TIMEOUT;
        }
        return EXIT_INTERNAL;
    }

    /** A combination of options that makes no sense; reported like a parse error. */
    static final class UsageException extends RuntimeException {
        UsageException(String message) {
            super(message);
        }
    }

    /** An expected failure with its exit code (one of the EXIT_ constants) and a one-line message. */
    static final class Failure extends RuntimeException {
        final int exitCode;

        Failure(int exitCode, String message) {
            super(message);
            this.exitCode = exitCode;
        }
    }
}
