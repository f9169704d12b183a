package io.ballast;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * Surefire runs only classes whose names match its include patterns; a test class named otherwise
 * (NbdCodecProperties was) compiles and never runs. Every file under src/test/java with a test method
 * must match one of the patterns Surefire uses here.
 */
class TestClassNamesTest {
    /** Surefire's default includes (the pom sets none): Test*, *Test, *Tests, *TestCase. */
    static final List<Pattern> SUREFIRE_INCLUDES = List.of(
            Pattern.compile("Test.*"), Pattern.compile(".*Test"), Pattern.compile(".*Tests"), Pattern.compile(".*TestCase"));
    static final Pattern TEST_METHOD = Pattern.compile(
            "@(Test|ParameterizedTest|RepeatedTest|TestFactory|TestTemplate|Property|Example)\\b");

    static boolean included(String simpleName) {
        return SUREFIRE_INCLUDES.stream().anyMatch(p -> p.matcher(simpleName).matches());
    }

    @Test
    void thePomKeepsSurefiresDefaultIncludes() throws Exception {
        String pom = Files.readString(Path.of("pom.xml"));
        assertThat(pom).as("pom.xml changes Surefire's includes: update SUREFIRE_INCLUDES here to match")
                .doesNotContain("<includes>").doesNotContain("<include>");
    }

    @Test
    void everyClassWithTestMethodsMatchesAnIncludePattern() throws Exception {
        List<String> left = new ArrayList<>();
        int withTests = 0;
        try (Stream<Path> files = Files.walk(Path.of("src/test/java"))) {
            for (Path f : files.filter(p -> p.toString().endsWith(".java")).toList()) {
                if (!TEST_METHOD.matcher(Files.readString(f)).find()) {
                    continue;
                }
                withTests++;
                String name = f.getFileName().toString().replaceFirst("\\.java$", "");
                if (!included(name)) {
                    left.add(f.toString());
                }
            }
        }
        assertThat(withTests).as("test classes found").isGreaterThan(50);
        assertThat(left).as("classes with test methods that Surefire never runs: rename them to *Test").isEmpty();
    }

    @Test
    void thePatternsAreSurefires() {
        assertThat(included("NbdCodecPropertyTest")).isTrue();
        assertThat(included("TestFoo")).isTrue();
        assertThat(included("FooTests")).isTrue();
        assertThat(included("NbdCodecProperties")).isFalse();
        assertThat(included("FooIT")).isFalse();
    }
}
