package io.ballast.cli;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

/**
 * Which calls go over a node's local API socket instead of HTTPS (docs/cli.md, "The local API
 * socket"). {@code $BALLAST_API_SOCKET}: unset or {@code auto}, a node of the local cluster
 * ({@code ballast up}, local.json) is reached over {@code DATA_DIR/api.sock} when that socket takes a
 * connection, else over HTTPS; {@code off}, always HTTPS; a path, the command's server is reached over
 * that socket and nothing else (an unusable socket is an error, not a fallback).
 */
final class ApiSocket {
    static final String ENV = "BALLAST_API_SOCKET";
    /** The socket's name in a node's data directory (NodeDaemon.API_SOCKET). */
    static final String FILE = io.ballast.node.NodeDaemon.API_SOCKET;

    private static volatile String setting;
    private static volatile Path home;

    /** local.json's nodes: API URL to socket path, read once per $BALLAST_HOME. */
    private record Known(Path home, Map<String, Path> byUrl) {}

    private static volatile Known known;

    private ApiSocket() {}

    /** Called once per command line, before any NodeClient is made. */
    static void configure(Map<String, String> env, Path ballastHome) {
        String s = env.get(ENV);
        setting = s == null || s.isBlank() ? "auto" : s.strip();
        home = ballastHome;
    }

    /** Whether the setting forces HTTPS. */
    static boolean off() {
        return "off".equals(setting);
    }

    /** The socket the setting names, or null (auto or off). */
    static Path forced() {
        String s = setting;
        return s == null || s.equals("auto") || s.equals("off") ? null : Path.of(s);
    }

    /** For the command's own server: the forced socket, else {@link #auto}. */
    static UnixHttpClient forTarget(String baseUrl) {
        Path f = forced();
        return f != null ? UnixHttpClient.of(f) : auto(baseUrl);
    }

    /** The local cluster node at {@code baseUrl}'s socket when it takes a connection; null: HTTPS. */
    static UnixHttpClient auto(String baseUrl) {
        Path h = home;
        if (off() || h == null) {
            return null;
        }
        Known k = known;
        if (k == null || !k.home().equals(h)) {
            Map<String, Path> byUrl = new HashMap<>();
            new LocalCluster(h).read().ifPresent(s -> {
                if (s.nodes() != null) {
                    for (LocalCluster.LocalNode n : s.nodes()) {
                        if (n.apiUrl() != null && n.dataDir() != null) {
                            byUrl.put(strip(n.apiUrl()), Path.of(n.dataDir()).resolve(FILE));
                        }
                    }
                }
            });
            k = new Known(h, Map.copyOf(byUrl));
            known = k;
        }
        Path socket = k.byUrl().get(strip(baseUrl));
        if (socket == null || !Files.exists(socket)) {
            return null;
        }
        UnixHttpClient c = UnixHttpClient.of(socket);
        return c.usable() ? c : null; // not root, or the node is down: HTTPS says what is wrong
    }

    private static String strip(String url) {
        return url.replaceAll("/+$", "");
    }
}
