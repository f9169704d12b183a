package io.ballast.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * Every `ballast ...` command that the code puts in a message (an error's correction, a warning, a
 * help text) parses with the CLI as it is, once its variable parts are filled in: known commands,
 * known options, a value where an option needs one, and no "..." to fill in by hand. Hints are built
 * from string literals joined with values; the check rebuilds each with {@code X} for the values.
 * ClusterCliSystemTest pastes the hints of the wrong-node refusals and checks they do what they say.
 */
class HintCommandsTest {
    record Hint(Path file, int line, String text) {}

    @Test
    void everyHintInTheCodeParses() throws IOException {
        List<Hint> hints = new ArrayList<>();
        try (Stream<Path> files = Files.walk(Path.of("src/main/java"))) {
            for (Path f : files.filter(p -> p.toString().endsWith(".java")).sorted().toList()) {
                hints.addAll(hints(f, Files.readString(f)));
            }
        }
        assertThat(hints).as("hints found in the code").hasSizeGreaterThan(30);
        List<String> failures = new ArrayList<>();
        for (Hint h : hints) {
            if (h.text().startsWith("ballast X")) {
                continue; // a command line echoed as it was run (a log line), not a hint with a command of its own
            }
            if (h.text().contains("...")) {
                failures.add(h.file() + ":" + h.line() + ": `" + h.text() + "`: has '...' to fill in by hand");
                continue;
            }
            List<List<String>> commands = DocsCommandsTest.commands(h.text());
            if (commands.isEmpty()) {
                failures.add(h.file() + ":" + h.line() + ": `" + h.text() + "`: not a command");
            }
            for (List<String> args : commands) {
                String problem = DocsCommandsTest.parse(args);
                if (problem != null) {
                    failures.add(h.file() + ":" + h.line() + ": `" + h.text() + "`: " + problem);
                }
            }
        }
        assertThat(failures).as("hints the CLI does not parse").isEmpty();
    }

    @Test
    void theExtractionRebuildsJoinedHints() {
        String src = """
                class A {
                    void f() {
                        throw conflict("volume " + v.name() + " is attached; detach it there: `ballast volume detach " + v.name()
                                + " --on " + node.id() + "`");
                        log.warn("delete it: `ballast snapshot delete {} {}`", a, b);
                        // a comment: `ballast up` is not a hint
                    }
                }
                """;
        assertThat(hints(Path.of("A.java"), src)).extracting(Hint::text)
                .containsExactly("ballast volume detach X --on X", "ballast snapshot delete X X");
    }

    /** The `ballast ...` spans that start inside string literals, joined across {@code " + expr + "} with X for each value. */
    static List<Hint> hints(Path file, String src) {
        List<Hint> out = new ArrayList<>();
        int from = 0;
        while (true) {
            int start = src.indexOf("`ballast ", from);
            if (start < 0) {
                return out;
            }
            from = start + 1;
            if (!insideStringLiteral(src, start)) {
                continue;
            }
            String text = rebuild(src, start + 1);
            int line = (int) src.substring(0, start).chars().filter(c -> c == '\n').count() + 1;
            out.add(new Hint(file, line, text == null ? "(no closing backtick in the statement)" : text.replace("{}", "X").strip()));
        }
    }

    /** On its line, after an odd number of unescaped quotes, and the line is not a comment. */
    private static boolean insideStringLiteral(String src, int at) {
        int lineStart = src.lastIndexOf('\n', at) + 1;
        String before = src.substring(lineStart, at);
        String stripped = before.stripLeading();
        if (stripped.startsWith("//") || stripped.startsWith("*") || stripped.startsWith("/*")) {
            return false;
        }
        int quotes = 0;
        for (int i = 0; i < before.length(); i++) {
            if (before.charAt(i) == '\\') {
                i++;
            } else if (before.charAt(i) == '"') {
                quotes++;
            }
        }
        return quotes % 2 == 1;
    }

    /** From just after the opening backtick to the closing one; null when the statement ends first. */
    private static String rebuild(String src, int at) {
        StringBuilder text = new StringBuilder();
        boolean literal = true;
        StringBuilder code = new StringBuilder();
        for (int i = at; i < src.length(); i++) {
            char c = src.charAt(i);
            if (literal) {
                if (c == '\\' && i + 1 < src.length()) {
                    text.append(src.charAt(++i));
                } else if (c == '`') {
                    return text.toString();
                } else if (c == '"') {
                    literal = false;
                    code.setLength(0);
                } else {
                    text.append(c);
                }
            } else {
                if (c == '"') {
                    if (!code.toString().replaceAll("[\\s+]", "").isEmpty()) {
                        text.append('X');
                    }
                    literal = true;
                } else if (c == ';' || c == '{' || c == '}') {
                    return null;
                } else {
                    code.append(c);
                }
            }
        }
        return null;
    }
}
