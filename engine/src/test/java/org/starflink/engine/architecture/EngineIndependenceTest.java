package org.starflink.engine.architecture;

import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;
import static com.tngtech.archunit.library.dependencies.SlicesRuleDefinition.slices;

import com.tngtech.archunit.core.domain.JavaClasses;
import com.tngtech.archunit.core.importer.ClassFileImporter;
import com.tngtech.archunit.core.importer.ImportOption;
import org.junit.jupiter.api.Test;

/**
 * The engine is Flink-free (operators depend on it, never the other way round), and its packages form no cycle:
 * backend below forward below star, wire below star, so that a new backend or codec never drags the rest along.
 */
class EngineIndependenceTest {

    @Test
    void engineImportsNoFlinkOrPipelineClass() {
        JavaClasses engine = new ClassFileImporter()
                .withImportOption(ImportOption.Predefined.DO_NOT_INCLUDE_TESTS)
                .importPackages("org.starflink.engine");
        noClasses().should().dependOnClassesThat()
                .resideInAnyPackage("org.apache.flink..", "org.apache.kafka..", "org.starflink.operators..",
                        "org.starflink.pipeline..")
                .check(engine);
    }

    @Test
    void enginePackagesHaveNoCycles() {
        JavaClasses engine = new ClassFileImporter()
                .withImportOption(ImportOption.Predefined.DO_NOT_INCLUDE_TESTS)
                .importPackages("org.starflink.engine");
        slices().matching("org.starflink.engine.(*)..").should().beFreeOfCycles().check(engine);
    }
}
