package org.starflink.it;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import org.starflink.it.cluster.ManagedProcess;

/**
 * The {@code starflink} command as a separate process, started the way {@code bin/starflink} starts it: the
 * pipeline module's classes and its launcher classpath ({@code pipeline/target/classpath-*.txt}, no test jars),
 * the JVM flags of this test JVM, in a working directory of the test's choosing. stdout and stderr go to files.
 */
final class CliProcess {
    final Process process;
    final Path stdout;
    final Path stderr;

    private CliProcess(Process process, Path stdout, Path stderr) {
        this.process = process;
        this.stdout = stdout;
        this.stderr = stderr;
    }

    static CliProcess start(Path workingDir, String name, String... args) {
        Path target = Path.of(System.getProperty("starflink.project.dir", ".."), "pipeline", "target");
        List<String> command = new ArrayList<>();
        command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        for (String flag : ManagedProcess.inheritedJvmFlags()) {
            // as bin/starflink: the incubating Vector API only for `run` (the JVM warns of it in a line of its own)
            if (!flag.startsWith("--add-modules") || (args.length > 0 && args[0].equals("run"))) {
                command.add(flag);
            }
        }
        command.add("-Xmx1g");
        command.add("-cp");
        command.add(target.resolve("classes") + ":" + read(target.resolve("classpath-runtime.txt")) + ":"
                + read(target.resolve("classpath-provided.txt")));
        command.add("org.starflink.pipeline.cli.StarflinkCli");
        command.addAll(List.of(args));
        try {
            Files.createDirectories(workingDir);
            Path out = workingDir.resolve(name + ".out");
            Path err = workingDir.resolve(name + ".err");
            Process process = new ProcessBuilder(command).directory(workingDir.toFile())
                    .redirectOutput(out.toFile()).redirectError(err.toFile()).start();
            return new CliProcess(process, out, err);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static String read(Path file) {
        try {
            return Files.readString(file).strip();
        } catch (IOException e) {
            throw new IllegalStateException("no launcher classpath " + file + ": build the pipeline module first", e);
        }
    }

    /** Runs to the end; returns the exit code. */
    int await(Duration timeout) throws InterruptedException {
        if (!process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
            process.destroyForcibly();
            throw new AssertionError("still running after " + timeout + "; stdout:\n" + out() + "\nstderr:\n" + err());
        }
        return process.exitValue();
    }

    /** Until stdout has a line that passes {@code ready}; fails if the process ends first. */
    String awaitLine(Predicate<String> ready, Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (System.nanoTime() < deadline) {
            for (String line : out().lines().toList()) {
                if (ready.test(line)) {
                    return line;
                }
            }
            if (!process.isAlive()) {
                throw new AssertionError("ended with " + process.exitValue() + " before the line; stdout:\n" + out()
                        + "\nstderr:\n" + err());
            }
            Thread.sleep(100);
        }
        throw new AssertionError("no such line after " + timeout + "; stdout:\n" + out() + "\nstderr:\n" + err());
    }

    String out() {
        return readQuietly(stdout);
    }

    String err() {
        return readQuietly(stderr);
    }

    private static String readQuietly(Path file) {
        try {
            return Files.exists(file) ? Files.readString(file) : "";
        } catch (IOException e) {
            return "";
        }
    }
}
