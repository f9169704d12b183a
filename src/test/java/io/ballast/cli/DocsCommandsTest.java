package io.ballast.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/**
 * Every `ballast ...` command in a code block of README.md and docs/*.md parses with the CLI as it is:
 * known commands, known options, values where options need them. So the docs cannot drift from the
 * code again (docs/cli.md once showed options that no longer existed). Parsing only: nothing runs.
 */
class DocsCommandsTest {
    record Example(Path file, int line, String text) {}

    @Test
    void everyDocumentedCommandParses() throws IOException {
        List<Path> files = new ArrayList<>();
        files.add(Path.of("README.md"));
        try (Stream<Path> docs = Files.list(Path.of("docs"))) {
            docs.filter(p -> p.toString().endsWith(".md")).sorted().forEach(files::add);
        }
        List<Example> examples = new ArrayList<>();
        for (Path f : files) {
            examples.addAll(examples(f));
        }
        assertThat(examples).as("commands found in the docs").hasSizeGreaterThan(40);
        List<String> failures = new ArrayList<>();
        for (Example e : examples) {
            for (List<String> args : commands(e.text())) {
                String problem = parse(args);
                if (problem != null) {
                    failures.add(e.file() + ":" + e.line() + ": `" + String.join(" ", args) + "`: " + problem);
                }
            }
        }
        assertThat(failures).as("documented commands that the CLI does not parse").isEmpty();
    }

    @Test
    void theCheckItselfCatchesAWrongCommand() {
        assertThat(parse(List.of("volume", "create", "pg", "--size", "1GiB"))).isNull();
        assertThat(parse(List.of("volume", "create", "pg", "--sise", "1GiB"))).contains("--sise");
        assertThat(parse(List.of("volume", "frobnicate", "pg"))).isNotNull();
        assertThat(commands("bin/ballast volume attach pg --mount /mnt/pg   # ext4 is created on first use"))
                .containsExactly(List.of("volume", "attach", "pg", "--mount", "/mnt/pg"));
        assertThat(commands("ballast snapshot list pg -o json | jq '.[] | .name'"))
                .containsExactly(List.of("snapshot", "list", "pg", "-o", "json"));
        assertThat(commands("ballast volume create pg --size 10GiB [--repl 1..3] [--force]"))
                .containsExactly(List.of("volume", "create", "pg", "--size", "10GiB", "--repl", "1..3", "--force"));
    }

    /** Lines of fenced (```) or indented (4 spaces) code blocks that run ballast, with continuations joined. */
    static List<Example> examples(Path file) throws IOException {
        List<String> lines = Files.readAllLines(file);
        List<Example> out = new ArrayList<>();
        boolean fenced = false;
        for (int i = 0; i < lines.size(); i++) {
            String raw = lines.get(i);
            if (raw.strip().startsWith("```")) {
                fenced = !fenced;
                continue;
            }
            boolean indented = raw.startsWith("    ") && !raw.strip().startsWith("-") && !raw.strip().startsWith("|");
            if (!fenced && !indented) {
                continue;
            }
            String s = raw.strip().replaceFirst("^\\$ ", "").replaceFirst("^# ", "");
            if (!s.matches("^(\\./)?(bin/|/usr/bin/|/opt/ballast/bin/)?ballast( .*)?$")) {
                continue;
            }
            int first = i;
            StringBuilder cmd = new StringBuilder(s);
            while (cmd.toString().endsWith("\\") && i + 1 < lines.size()) {
                cmd.setLength(cmd.length() - 1);
                cmd.append(' ').append(lines.get(++i).strip());
            }
            out.add(new Example(file, first + 1, cmd.toString()));
        }
        return out;
    }

    /** The ballast invocations in one shell line: comments cut, split at | && || ; and redirections dropped. */
    static List<List<String>> commands(String line) {
        List<List<String>> out = new ArrayList<>();
        List<String> current = null;
        for (String tok : tokens(line)) {
            if (tok.equals("|") || tok.equals("&&") || tok.equals("||") || tok.equals(";")) {
                current = null;
                continue;
            }
            if (current == null) {
                if (tok.matches("^(\\./)?(bin/|/usr/bin/|/opt/ballast/bin/)?ballast$")) {
                    current = new ArrayList<>();
                    out.add(current);
                }
                continue;
            }
            if (tok.matches("^[0-9]?>>?.*") || tok.startsWith("<")) {
                continue; // redirection
            }
            // synopsis notation: [--repl N] and [pg] are checked as if given; a|b takes the first
            String word = tok.replaceAll("^\\[+", "").replaceAll("]+$", "");
            if (word.isEmpty() || word.equals("...")) {
                continue;
            }
            current.add(word.startsWith("$") ? "x" : word.split("\\|")[0]);
        }
        return out;
    }

    /** Shell-like words: quotes kept together, # starts a comment outside quotes, operators split. */
    static List<String> tokens(String line) {
        List<String> out = new ArrayList<>();
        StringBuilder w = new StringBuilder();
        boolean inWord = false;
        char quote = 0;
        for (int i = 0; i < line.length(); i++) {
            char ch = line.charAt(i);
            if (quote != 0) {
                if (ch == quote) {
                    quote = 0;
                } else {
                    w.append(ch);
                }
                continue;
            }
            if (ch == '\'' || ch == '"') {
                quote = ch;
                inWord = true;
                continue;
            }
            if (ch == '#' && !inWord) {
                break;
            }
            if (ch == ' ' || ch == '\t') {
                if (inWord) {
                    out.add(w.toString());
                    w.setLength(0);
                    inWord = false;
                }
                continue;
            }
            if (ch == ';' && inWord) { // "json];" ends the word and the command
                out.add(w.toString());
                w.setLength(0);
                inWord = false;
            }
            if ((ch == '|' || ch == ';' || ch == '&') && !inWord) {
                String op = line.startsWith("&&", i) ? "&&" : line.startsWith("||", i) ? "||" : String.valueOf(ch);
                out.add(op);
                i += op.length() - 1;
                continue;
            }
            w.append(ch);
            inWord = true;
        }
        if (inWord) {
            out.add(w.toString());
        }
        return out;
    }

    /** null when the CLI parses these arguments; else picocli's complaint. */
    static String parse(List<String> args) {
        CommandLine cl = BallastCli.commandLine(new BallastCli(new PrintWriter(new StringWriter()), new PrintWriter(new StringWriter()), Map.of()));
        try {
            CommandLine.ParseResult r = cl.parseArgs(args.toArray(String[]::new));
            // a group command given no subcommand runs nothing useful: `ballast volume` alone is fine in
            // prose but a documented example should name the verb
            return null;
        } catch (CommandLine.ParameterException e) {
            return e.getMessage();
        }
    }
}
