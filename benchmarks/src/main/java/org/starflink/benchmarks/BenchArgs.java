package org.starflink.benchmarks;

import java.util.ArrayList;
import java.util.List;

/** The benchmarks' command-line options: {@code --name value} pairs, anything else ignored. */
final class BenchArgs {
    private BenchArgs() {
    }

    static String option(String[] args, String name, String fallback) {
        for (int i = 0; i + 1 < args.length; i++) {
            if (args[i].equals(name)) {
                return args[i + 1];
            }
        }
        return fallback;
    }

    /** A comma-separated list of integers. */
    static List<Integer> ints(String csv) {
        List<Integer> result = new ArrayList<>();
        for (String n : csv.split(",")) {
            result.add(Integer.parseInt(n.trim()));
        }
        return result;
    }
}
