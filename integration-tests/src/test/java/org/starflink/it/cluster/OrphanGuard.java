package org.starflink.it.cluster;

import java.lang.reflect.Method;
import java.util.Arrays;

/**
 * The main class of every process the cluster fixture starts: watches the test JVM that started it and halts this
 * JVM within a second once that one is gone (killed, crashed, ended without its shutdown hook), then runs the real
 * main class in this same JVM. So a test's processes cannot outlive it, whatever ends it, and kill -9 of this
 * process is still kill -9 of the broker or TaskManager itself.
 *
 * <p>Only the JDK is used here: {@link ManagedProcess} copies this one class file into a directory of its own that
 * goes first on the child's classpath, so the cluster's classpath otherwise holds no test code.
 *
 * <p>Arguments: the owner's pid, the real main class, its arguments.
 */
public final class OrphanGuard {
    private OrphanGuard() {
    }

    public static void main(String[] args) throws Throwable {
        long owner = Long.parseLong(args[0]);
        Thread watch = new Thread(() -> {
            while (ProcessHandle.of(owner).map(ProcessHandle::isAlive).orElse(false)) {
                try {
                    Thread.sleep(500);
                } catch (InterruptedException e) {
                    return;
                }
            }
            System.err.println("OrphanGuard: test JVM " + owner + " is gone, halting");
            Runtime.getRuntime().halt(137);
        }, "orphan-guard");
        watch.setDaemon(true);
        watch.start();
        Method main = Class.forName(args[1]).getMethod("main", String[].class);
        try {
            main.invoke(null, (Object) Arrays.copyOfRange(args, 2, args.length));
        } catch (java.lang.reflect.InvocationTargetException e) {
            throw e.getCause();
        }
    }
}
