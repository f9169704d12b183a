package io.ballast.cli;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.ballast.common.Json;
import io.ballast.common.Sizes;
import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.List;
import picocli.CommandLine.Option;

/** Mixin for every command that talks to a node: target and output format. */
public final class Output {
    static final ObjectMapper PRETTY = Json.newMapper().enable(SerializationFeature.INDENT_OUTPUT);

    /**
     * The same objects as {@code -o json}, in YAML (one document per object, as kubectl prints them); made
     * on first use: a mapper with SnakeYAML under it is a cost every other call would pay at its start.
     */
    private static final class Yaml {
        static final ObjectMapper MAPPER = new ObjectMapper(new com.fasterxml.jackson.dataformat.yaml.YAMLFactory());
    }

    /** {@code wide}: the human table with more columns; {@code json} and {@code yaml}: the API's objects. */
    public enum Format { human, wide, json, yaml }

    @Option(names = "--server", paramLabel = "HOST:PORT|URL",
            description = "API address (default: $BALLAST_SERVER, else the current context's, else the cluster `ballast up`"
                    + " started, else 127.0.0.1:7400)")
    String server;

    /** Deprecated name of {@code --server}, kept for scripts and printed hints from older versions; a node name means {@code --on}. */
    @Option(names = "--node", paramLabel = "URL", hidden = true)
    String node;

    @Option(names = "--on", paramLabel = "NODE",
            description = "Run this on the node named NODE (as `ballast node list` shows it): that node's API answers,"
                    + " e.g. the node where an attach happens")
    String on;

    @Option(names = "--token-file", paramLabel = "FILE",
            description = "File holding the API token ('-': stdin); default: $BALLAST_TOKEN, else the current context's")
    java.nio.file.Path tokenFile;

    @Option(names = "--context", paramLabel = "NAME", description = "Use this context of the CLI config instead of the current one")
    String context;

    @Option(names = {"-o", "--output"}, paramLabel = "FORMAT", defaultValue = "human",
            description = "Output format: ${COMPLETION-CANDIDATES} (default: ${DEFAULT-VALUE})")
    Format format = Format.human;

    /**
     * A verb's result: with {@code -o json} the object on stdout (so every verb can be scripted), else
     * {@code human} on stderr, as the verbs without a listing always did.
     */
    void done(PrintWriter out, PrintWriter err, JsonNode result, String human) {
        if (json()) {
            print(out, result);
        } else {
            err.println(human);
        }
    }

    /** A result object: {@code "action": action} plus the given key/value pairs. */
    static com.fasterxml.jackson.databind.node.ObjectNode result(String action, String... keyValues) {
        var o = PRETTY.createObjectNode();
        o.put("action", action);
        for (int i = 0; i + 1 < keyValues.length; i += 2) {
            o.put(keyValues[i], keyValues[i + 1]);
        }
        return o;
    }

    boolean wide() {
        return format == Format.wide;
    }

    /** Structured output asked for: {@code -o json} or {@code -o yaml} (print it with {@link #print}). */
    boolean json() {
        return format == Format.json || format == Format.yaml;
    }

    /** An object in the format asked for: YAML with {@code -o yaml}, else JSON. */
    void print(PrintWriter out, Object value) {
        print(out, value, format);
    }

    /** As {@link #print(PrintWriter, Object)}, for a command with its own {@code -o} option. */
    static void print(PrintWriter out, Object value, Format format) {
        if (format != Format.yaml) {
            printJson(out, value);
            return;
        }
        try {
            out.print(Yaml.MAPPER.writeValueAsString(value));
            out.flush();
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    static void printJson(PrintWriter out, Object value) {
        try {
            out.println(PRETTY.writeValueAsString(value));
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    static String size(JsonNode n) {
        return n == null || n.isNull() || n.isMissingNode() ? "-" : Sizes.format(n.asLong());
    }

    /** A duration given in milliseconds, as people read it ("300 ms", "1.5 s", "5 min"); "-" when absent. */
    static String duration(JsonNode ms) {
        return ms != null && ms.isNumber() ? io.ballast.cluster.ClusterSettings.seconds(ms.asLong()) : "-";
    }

    /** A scalar as text; an array as its elements joined with ", " (e.g. the in-sync nodes). */
    static String text(JsonNode n) {
        if (n == null || n.isNull() || n.isMissingNode()) {
            return "-";
        }
        if (n.isArray()) {
            java.util.List<String> parts = new java.util.ArrayList<>();
            n.forEach(x -> parts.add(text(x)));
            return parts.isEmpty() ? "-" : String.join(", ", parts);
        }
        return n.asText();
    }

    /** An ISO instant cut to whole seconds for tables. */
    static String instant(JsonNode n) {
        String t = text(n);
        int dot = t.indexOf('.');
        return dot > 0 && t.endsWith("Z") ? t.substring(0, dot) + "Z" : t;
    }

    /** A plain left-aligned table, columns two spaces apart. */
    /** {@code header} null: rows only (the later pages of a list printed as it arrives). */
    static void table(PrintWriter out, List<String> header, List<List<String>> rows) {
        List<List<String>> all = new ArrayList<>();
        if (header != null) {
            all.add(header);
        }
        all.addAll(rows);
        if (all.isEmpty()) {
            return;
        }
        int[] width = new int[all.getFirst().size()];
        for (List<String> r : all) {
            for (int i = 0; i < r.size(); i++) {
                width[i] = Math.max(width[i], r.get(i).length());
            }
        }
        for (List<String> r : all) {
            StringBuilder sb = new StringBuilder();
            for (int i = 0; i < r.size(); i++) {
                sb.append(i == r.size() - 1 ? r.get(i) : String.format("%-" + (width[i] + 2) + "s", r.get(i)));
            }
            out.println(sb.toString().stripTrailing());
        }
    }
}
