package org.starflink.it.cluster;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

/**
 * A JVM the cluster fixture started: its own process, output to a log file, and never outliving the test JVM.
 * Three things see to that: {@link #close} (the fixture's JUnit extension, {@link ClusterProcesses}), a shutdown
 * hook that kills every process still alive when the test JVM exits, and {@link OrphanGuard} inside the child, for
 * the case where the test JVM dies without running its hooks (kill -9, a crash).
 */
public final class ManagedProcess implements AutoCloseable {
    private static final Set<ManagedProcess> LIVE = ConcurrentHashMap.newKeySet();

    static {
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            for (ManagedProcess process : LIVE) {
                process.kill();
            }
        }, "cluster-fixture-cleanup"));
    }

    final String name;
    final Path log;
    private final Process process;

    private ManagedProcess(String name, Process process, Path log) {
        this.name = name;
        this.process = process;
        this.log = log;
    }

    /**
     * This JVM's module flags ({@code --add-opens}, {@code --add-exports}, {@code --add-modules},
     * {@code --enable-native-access}) and {@code -Dai.djl.*} settings: what a JVM the tests start needs to run the
     * engine as the tests' own JVM does.
     */
    public static List<String> inheritedJvmFlags() {
        List<String> flags = new ArrayList<>();
        for (String flag : ManagementFactory.getRuntimeMXBean().getInputArguments()) {
            if (flag.startsWith("--add-opens") || flag.startsWith("--add-exports") || flag.startsWith("--add-modules")
                    || flag.startsWith("--enable-native-access") || flag.startsWith("-Dai.djl")) {
                flags.add(flag);
            }
        }
        return flags;
    }

    /**
     * Starts {@code mainClass} in a JVM of its own with {@link #inheritedJvmFlags}, the given JVM options, classpath
     * and arguments; stdout and stderr go to {@code log} (appended: a restarted process continues its predecessor's
     * log).
     */
    public static ManagedProcess start(String name, List<Path> classpath, String mainClass, List<String> jvmOptions,
                                       List<String> args, Map<String, String> environment, Path log) {
        List<String> command = new ArrayList<>();
        command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        command.addAll(inheritedJvmFlags());
        command.addAll(jvmOptions);
        command.add("-cp");
        StringBuilder cp = new StringBuilder(guardDirectory(log.getParent()).toString());
        for (Path entry : classpath) {
            cp.append(':').append(entry);
        }
        command.add(cp.toString());
        command.add(OrphanGuard.class.getName());
        command.add(Long.toString(ProcessHandle.current().pid()));
        command.add(mainClass);
        command.addAll(args);
        try {
            Files.createDirectories(log.getParent());
            ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true)
                    .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()));
            builder.environment().putAll(environment);
            Files.writeString(log, "\n=== " + java.time.Instant.now() + " starting " + name + ": "
                    + String.join(" ", command) + "\n", java.nio.file.StandardOpenOption.CREATE,
                    java.nio.file.StandardOpenOption.APPEND);
            ManagedProcess started = new ManagedProcess(name, builder.start(), log);
            LIVE.add(started);
            return started;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot start " + name, e);
        }
    }

    /** A directory holding only {@link OrphanGuard}'s class file: the guard without the rest of the test code. */
    private static synchronized Path guardDirectory(Path logs) {
        String file = OrphanGuard.class.getName().replace('.', '/') + ".class";
        Path dir = logs.resolve("orphan-guard");
        Path target = dir.resolve(file);
        if (!Files.exists(target)) {
            try (InputStream in = OrphanGuard.class.getClassLoader().getResourceAsStream(file)) {
                Files.createDirectories(target.getParent());
                Files.copy(in, target);
            } catch (IOException e) {
                throw new UncheckedIOException("cannot copy " + file, e);
            }
        }
        return dir;
    }

    public long pid() {
        return process.pid();
    }

    public boolean isAlive() {
        return process.isAlive();
    }

    /** kill -9 (SIGKILL: no shutdown hooks, no clean close), and waits until the process is gone. */
    public void kill() {
        process.destroyForcibly();
        try {
            if (!process.waitFor(30, TimeUnit.SECONDS)) {
                throw new IllegalStateException(name + " (pid " + pid() + ") still alive 30 s after SIGKILL");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        LIVE.remove(this);
    }

    /** The last {@code lines} lines of the log, for failure messages. */
    public String logTail(int lines) {
        try {
            List<String> all = Files.readAllLines(log);
            return String.join("\n", all.subList(Math.max(0, all.size() - lines), all.size()));
        } catch (IOException e) {
            return "(no log " + log + ")";
        }
    }

    /** Fails with the log's tail if the process has ended. */
    public void assertAlive() {
        if (!process.isAlive()) {
            throw new IllegalStateException(name + " ended with exit code " + process.exitValue() + "; the end of "
                    + log + ":\n" + logTail(40));
        }
    }

    @Override
    public void close() {
        kill();
    }

    @Override
    public String toString() {
        return name + " (pid " + process.pid() + ")";
    }
}
