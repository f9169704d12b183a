package io.ballast.cli;

import io.ballast.common.BallastException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Optional;

/**
 * Where the CLI sends API calls and with which token (docs/cli.md, "Which server, which credential"):
 * the server from {@code --server} (or the deprecated {@code --node}), $BALLAST_SERVER ($BALLAST_NODE),
 * the current context, the cluster `ballast up` started, else 127.0.0.1:7400; the token from
 * {@code --token-file}, $BALLAST_TOKEN, else the context's.
 */
record ApiTarget(String server, String token, String contextName) {

    /** Never the token. */
    @Override
    public String toString() {
        return "ApiTarget[server=" + server + ", context=" + contextName + "]";
    }

    static ApiTarget resolve(Output o, Map<String, String> env, Path home) {
        CliConfig config = new CliConfig(CliConfig.location(env));
        Optional<CliConfig.Context> ctx = o.context != null
                ? Optional.of(config.context(o.context).orElseThrow(() -> BallastException.notFound("no context named "
                        + o.context + " in " + config.path() + "; `ballast config get-contexts` lists them")))
                : config.current();
        if (o.node != null && !o.node.contains(":") && o.on == null) {
            o.on = o.node; // `--node node-2`: a node's name, as `--on` takes it
        }
        String server = firstOf(o.server, o.on != null && o.on.equals(o.node) ? null : o.node, env.get("BALLAST_SERVER"),
                env.get("BALLAST_NODE"));
        if (server == null && ctx.isPresent() && ctx.get().name().equals(LocalCluster.CONTEXT)) {
            server = LocalCluster.readApiUrl(home).orElse(null); // the local cluster's first node that answers
        }
        if (server == null) {
            server = ctx.map(CliConfig.Context::server).orElse(null);
        }
        if (server == null) {
            server = LocalCluster.readApiUrl(home).orElse(defaultScheme() + "127.0.0.1:7400");
        }
        // the context's CA, unless --ca-file or $BALLAST_CA_FILE name one
        ctx.map(CliConfig.Context::caFile).filter(f -> f != null && !f.isBlank()).ifPresent(f -> CliTrust.contextCaFile(Path.of(f)));
        String token = o.tokenFile != null ? readTokenFile(o.tokenFile) : blankToNull(env.get("BALLAST_TOKEN"));
        if (token == null) {
            token = ctx.map(CliConfig.Context::token).orElse(null);
        }
        return new ApiTarget(normalize(server), token, ctx.map(CliConfig.Context::name).orElse(null));
    }

    /** HOST:PORT or a URL, as an http(s) base URL without a trailing slash. */
    static String normalize(String server) {
        String s = server.strip().replaceAll("/+$", "");
        if (s.startsWith("http://") || s.startsWith("https://")) {
            return s;
        }
        if (s.contains("://")) {
            throw BallastException.invalid("--server '" + server + "': use HOST:PORT or an http(s):// URL");
        }
        if (s.lastIndexOf(':') <= 0) {
            throw BallastException.invalid("--server '" + server + "': use HOST:PORT (e.g. 127.0.0.1:7400) or a URL");
        }
        return defaultScheme() + s;
    }

    /** https when the CLI knows a cluster CA (secure clusters are the default), else http. */
    private static String defaultScheme() {
        return CliTrust.caFile().isPresent() ? "https://" : "http://";
    }

    static String readTokenFile(Path file) {
        try {
            String t = "-".equals(file.toString()) ? new String(System.in.readAllBytes()).strip() : Files.readString(file).strip();
            if (t.isEmpty()) {
                throw BallastException.invalid("the token file " + file + " is empty");
            }
            return t;
        } catch (IOException e) {
            throw BallastException.invalid("cannot read the token file " + file + ": " + e.getMessage());
        }
    }

    private static String firstOf(String... values) {
        for (String v : values) {
            if (v != null && !v.isBlank()) {
                return v;
            }
        }
        return null;
    }

    private static String blankToNull(String s) {
        return s == null || s.isBlank() ? null : s.strip();
    }
}
