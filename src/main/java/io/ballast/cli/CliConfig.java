package io.ballast.cli;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.ballast.common.BallastException;
import io.ballast.common.DurableFiles;
import io.ballast.common.Json;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The CLI's credentials, like a kubeconfig (docs/cli.md, "Contexts"): named contexts of a server, the CA
 * that signs its certificate (for HTTPS), and a token; one of them current. The file is
 * {@code $BALLAST_CONFIG}, else {@code $BALLAST_HOME/config.json} when BALLAST_HOME is set, else
 * {@code ~/.config/ballast/config.json}; written 0600 (it holds tokens).
 */
final class CliConfig {
    private static final ObjectMapper JSON = Json.newMapper().enable(SerializationFeature.INDENT_OUTPUT)
            .disable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES);

    /** {@code caFile} null: plain HTTP, or HTTPS with the system's CAs. */
    record Context(String name, String server, String caFile, String token) {
        Context with(String server, String caFile, String token) {
            return new Context(name, server != null ? server : this.server, caFile != null ? caFile : this.caFile,
                    token != null ? token : this.token);
        }

        /** Never the token: records print into messages. */
        @Override
        public String toString() {
            return "Context[name=" + name + ", server=" + server + "]";
        }
    }

    record File(String currentContext, List<Context> contexts) {
        File {
            contexts = contexts == null ? List.of() : List.copyOf(contexts);
        }
    }

    private final Path path;

    CliConfig(Path path) {
        this.path = path;
    }

    static Path location(Map<String, String> env) {
        String explicit = env.get("BALLAST_CONFIG");
        if (explicit != null && !explicit.isBlank()) {
            return Path.of(explicit);
        }
        String home = env.get("BALLAST_HOME");
        if (home != null && !home.isBlank()) {
            return Path.of(home, "config.json");
        }
        return Path.of(System.getProperty("user.home"), ".config", "ballast", "config.json");
    }

    Path path() {
        return path;
    }

    File read() {
        if (!Files.exists(path)) {
            return new File(null, List.of());
        }
        try {
            return fileOf(JSON.readTree(path.toFile()));
        } catch (IOException e) {
            throw BallastException.invalid("cannot read the CLI config " + path + ": " + e.getMessage()
                    + "; fix or remove it (`ballast login --server HOST:PORT` writes a new one)");
        }
    }

    /**
     * The file's tree into its records by hand: Jackson's record binding (reflection over the records'
     * components and constructors) was a visible part of every CLI call's start (docs/perf/startup.md).
     * Unknown fields are ignored, as they were.
     */
    private static File fileOf(JsonNode root) throws IOException {
        if (root == null || !root.isObject()) {
            throw new IOException("not a JSON object");
        }
        List<Context> contexts = new ArrayList<>();
        JsonNode list = root.path("contexts");
        if (!list.isMissingNode() && !list.isNull()) {
            if (!list.isArray()) {
                throw new IOException("contexts: not an array");
            }
            for (JsonNode c : list) {
                if (!c.isObject()) {
                    throw new IOException("contexts: an element is not an object");
                }
                contexts.add(new Context(text(c, "name"), text(c, "server"), text(c, "caFile"), text(c, "token")));
            }
        }
        return new File(text(root, "currentContext"), contexts);
    }

    /** A string field, null when absent or null; a scalar as its text (as the record binding took it). */
    static String text(JsonNode o, String field) throws IOException {
        JsonNode v = o.path(field);
        if (v.isMissingNode() || v.isNull()) {
            return null;
        }
        if (v.isContainerNode()) {
            throw new IOException(field + ": not a string");
        }
        return v.asText();
    }

    Optional<Context> current() {
        File f = read();
        return f.currentContext() == null ? Optional.empty() : context(f, f.currentContext());
    }

    Optional<Context> context(String name) {
        return context(read(), name);
    }

    private static Optional<Context> context(File f, String name) {
        return f.contexts().stream().filter(c -> c.name().equals(name)).findFirst();
    }

    /** Adds or updates context {@code c} (null fields of an update keep their value); {@code makeCurrent} switches to it. */
    Context put(Context c, boolean makeCurrent) throws IOException {
        File f = read();
        List<Context> out = new ArrayList<>();
        Context merged = c;
        boolean found = false;
        for (Context x : f.contexts()) {
            if (x.name().equals(c.name())) {
                merged = x.with(c.server(), c.caFile(), c.token());
                out.add(merged);
                found = true;
            } else {
                out.add(x);
            }
        }
        if (!found) {
            out.add(c);
        }
        write(new File(makeCurrent || f.currentContext() == null ? c.name() : f.currentContext(), out));
        return merged;
    }

    void use(String name) throws IOException {
        File f = read();
        if (context(f, name).isEmpty()) {
            throw BallastException.notFound("no context named " + name + " in " + path + "; `ballast config get-contexts` lists them");
        }
        write(new File(name, f.contexts()));
    }

    private void write(File f) throws IOException {
        DurableFiles.writeAtomically(path, JSON.writeValueAsBytes(f)); // created 0600: it holds tokens
        io.ballast.common.OwnerOnly.restrictFile(path);
    }
}
