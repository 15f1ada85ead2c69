package org.starflink.deploy;

import java.lang.reflect.Field;
import java.lang.reflect.Modifier;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.CoreOptions;
import org.starflink.pipeline.ClusterSettings;
import org.starflink.pipeline.StarflinkJob;
import org.starflink.pipeline.StarflinkOptions;

/**
 * What a deployment's Flink configuration must satisfy, read from where the job defines it: every
 * {@link ClusterSettings#all()} setting stated with its value, every {@code starflink.*} key a declared
 * {@link StarflinkOptions} option whose value parses, the JVM flags the project runs Flink with, and
 * {@link StarflinkJob#jobOptions} accepting it with the given program arguments.
 */
final class DeploymentSettings {
    private DeploymentSettings() {
    }

    /** The problems of {@code conf}, one line each; empty when it is fine. */
    static List<String> problems(Configuration conf, String[] programArgs) {
        List<String> problems = new ArrayList<>();
        for (ClusterSettings.Setting<?> setting : ClusterSettings.all()) {
            if (!setting.isSetIn(conf)) {
                problems.add(setting.option().key() + " must be " + setting.value() + ", is "
                        + conf.getOptional(setting.option()).map(String::valueOf).orElse("unset"));
            }
        }
        Set<String> known = new TreeSet<>();
        for (ConfigOption<?> option : starflinkOptions()) {
            known.add(option.key());
            try {
                conf.getOptional(option);
            } catch (IllegalArgumentException e) {
                problems.add(option.key() + " does not parse: " + e.getMessage());
            }
        }
        String prefix = StarflinkOptions.KAFKA_PROPERTIES.key() + ".";
        for (String key : conf.keySet()) {
            if (key.startsWith("starflink.") && !known.contains(key) && !key.startsWith(prefix)) {
                problems.add(key + " is no Starflink option (StarflinkOptions)");
            }
        }
        String opts = conf.get(CoreOptions.FLINK_JVM_OPTIONS);
        List<String> given = Arrays.asList(opts.trim().split("\\s+"));
        for (String flag : jvmModuleArgs()) {
            if (!given.contains(flag)) {
                problems.add(CoreOptions.FLINK_JVM_OPTIONS.key() + " lacks " + flag);
            }
        }
        try {
            StarflinkJob.jobOptions(conf, programArgs);
        } catch (IllegalArgumentException e) {
            problems.add("the job refuses it: " + e.getMessage());
        }
        return problems;
    }

    /** The parent pom's jvm.module.args (passed to the tests by surefire). */
    static List<String> jvmModuleArgs() {
        String args = System.getProperty("starflink.jvm.module.args");
        if (args == null || args.isBlank()) {
            throw new IllegalStateException("starflink.jvm.module.args is not set: run the tests through Maven");
        }
        return Arrays.asList(args.trim().split("\\s+"));
    }

    static List<ConfigOption<?>> starflinkOptions() {
        List<ConfigOption<?>> options = new ArrayList<>();
        for (Field field : StarflinkOptions.class.getFields()) {
            if (Modifier.isStatic(field.getModifiers()) && ConfigOption.class.isAssignableFrom(field.getType())) {
                try {
                    options.add((ConfigOption<?>) field.get(null));
                } catch (IllegalAccessException e) {
                    throw new IllegalStateException(e);
                }
            }
        }
        return options;
    }
}
