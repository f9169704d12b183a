package io.ballast.arch;

import static org.assertj.core.api.Assertions.assertThat;
import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;
import static com.tngtech.archunit.library.dependencies.SlicesRuleDefinition.slices;

import com.tngtech.archunit.core.domain.JavaClasses;
import com.tngtech.archunit.core.importer.ClassFileImporter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The package layering docs/architecture.md describes: each layer may use the layers below it and
 * never one above, and the top-level packages import each other in no cycle.
 */
class LayeringTest {
    /** Bottom to top; packages on one line are one layer and do not use each other through this rule. */
    static final List<String[]> LAYERS = List.of(
            new String[] {"io.ballast.common..", "io.ballast.auth.."},
            new String[] {"io.ballast.storage..", "io.ballast.qos..", "io.ballast.keys.."},
            new String[] {"io.ballast.replication..", "io.ballast.frontend..", "io.ballast.backup.."},
            new String[] {"io.ballast.security.."},
            new String[] {"io.ballast.cluster.."},
            new String[] {"io.ballast.attach.."},
            new String[] {"io.ballast.control.."},
            // collectors over the node's parts (pool, engines, cluster health), served by the API
            new String[] {"io.ballast.metrics.."},
            new String[] {"io.ballast.api.."},
            new String[] {"io.ballast.integrations.."},
            new String[] {"io.ballast.node.."},
            new String[] {"io.ballast.cli.."});

    static JavaClasses main;

    @BeforeAll
    static void importMain() {
        // the compiled main classes only (scanning the class path for the package takes a minute)
        main = new ClassFileImporter().withImportOption(location -> !location.contains("/csi/proto/")) // generated
                .importPath(Path.of("target/classes"));
    }

    @Test
    void noLayerUsesOneAboveIt() {
        StringBuilder violations = new StringBuilder();
        for (int i = 0; i < LAYERS.size() - 1; i++) {
            List<String> above = new ArrayList<>();
            for (int j = i + 1; j < LAYERS.size(); j++) {
                above.addAll(Arrays.asList(LAYERS.get(j)));
            }
            noClasses().that().resideInAnyPackage(LAYERS.get(i))
                    .should().dependOnClassesThat().resideInAnyPackage(above.toArray(String[]::new))
                    .because("docs/architecture.md: a package uses only the layers below it")
                    .evaluate(main).getFailureReport().getDetails().forEach(d -> violations.append(d).append('\n'));
        }
        assertThat(violations.toString()).as("dependencies from a layer to one above it").isEmpty();
    }

    @Test
    void topLevelPackagesHaveNoCycles() {
        slices().matching("io.ballast.(*)..").should().beFreeOfCycles().check(main);
    }
}
