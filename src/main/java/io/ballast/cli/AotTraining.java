package io.ballast.cli;

import java.io.OutputStream;
import java.io.PrintWriter;
import java.util.List;
import java.util.Map;

/**
 * The training run of the CLI's ahead-of-time cache (JDK 25, JEP 483/514/515): bin/ballast runs it
 * once per build with {@code -XX:AOTCacheOutput}, against a node of its own it started for the
 * purpose, so that the classes a real command loads and links, and their method profiles, are in the
 * cache (docs/perf/startup.md). It runs the commands users type most, in process, their output
 * discarded; it exits non-zero when one fails, and bin/ballast then keeps no cache.
 *
 * <p>Usage (bin/ballast does this; not a user command): {@code AotTraining API_URL TOKEN_FILE CA_FILE}.
 */
public final class AotTraining {
    private AotTraining() {}

    public static void main(String[] args) throws java.io.IOException, InterruptedException {
        if (args.length != 3) {
            System.err.println("usage: AotTraining API_URL TOKEN_FILE CA_FILE");
            System.exit(2);
        }
        Map<String, String> env = Map.of("BALLAST_SERVER", args[0],
                "BALLAST_TOKEN", java.nio.file.Files.readString(java.nio.file.Path.of(args[1])).strip(), "BALLAST_CA_FILE", args[2],
                "BALLAST_HOME", System.getProperty("java.io.tmpdir") + "/ballast-aot-training-home");
        PrintWriter discard = new PrintWriter(OutputStream.nullOutputStream(), true);
        PrintWriter err = new PrintWriter(System.err, true);
        List<List<String>> commands = List.of(
                List.of("--version"),
                List.of("volume", "list", "--help"),
                List.of("volume", "create", "aot-training", "--size", "64MiB"),
                List.of("volume", "list"),
                List.of("volume", "list", "-o", "json"),
                List.of("volume", "list", "-o", "wide"),
                List.of("volume", "inspect", "aot-training"),
                List.of("snapshot", "create", "aot-training", "s1"),
                List.of("snapshot", "list", "aot-training"),
                List.of("node", "list"),
                List.of("status"),
                List.of("events"),
                List.of("snapshot", "delete", "aot-training", "s1"),
                List.of("volume", "delete", "aot-training"));
        // the node wrote its files before it answers, and a busy host may make its first calls slow
        long deadlineNs = System.nanoTime() + java.util.concurrent.TimeUnit.SECONDS.toNanos(120);
        CliTrust.configure(null, env, null);
        while (!new NodeClient(args[0]).healthy() && System.nanoTime() < deadlineNs) {
            Thread.sleep(200);
        }
        int failed = 0;
        for (List<String> c : commands) {
            int code = BallastCli.run(c.toArray(String[]::new), discard, err, env);
            for (int retry = 0; retry < 3 && code == ExitCodes.UNREACHABLE; retry++) {
                code = BallastCli.run(c.toArray(String[]::new), discard, err, env);
            }
            if (code != 0) {
                err.println("aot training: `ballast " + String.join(" ", c) + "` exited with " + code);
                failed++;
            }
        }
        // the same list as a user's shell runs it: the server, token and CA from the current context of the
        // CLI config, the road with the config file read and no picocli (QuickCommands)
        java.nio.file.Path home = java.nio.file.Files.createTempDirectory("ballast-aot-training-ctx");
        Map<String, String> ctxEnv = Map.of("BALLAST_HOME", home.toString());
        new CliConfig(CliConfig.location(ctxEnv)).put(new CliConfig.Context("aot-training", args[0], args[2], env.get("BALLAST_TOKEN")), true);
        for (List<String> c : List.of(List.of("volume", "list"), List.of("volume", "ls", "-o", "json"), List.of("volume", "list"))) {
            int code = BallastCli.run(c.toArray(String[]::new), discard, err, ctxEnv);
            if (code != 0) {
                err.println("aot training: `ballast " + String.join(" ", c) + "` (through a context) exited with " + code);
                failed++;
            }
        }
        // and over the node's local API socket, as a user on a node's host runs it (no TLS classes then)
        java.nio.file.Path socket = java.nio.file.Path.of(args[1]).toAbsolutePath().resolveSibling(ApiSocket.FILE);
        if (java.nio.file.Files.exists(socket)) {
            Map<String, String> socketEnv = Map.of("BALLAST_HOME", home.toString(), ApiSocket.ENV, socket.toString());
            for (List<String> c : List.of(List.of("volume", "list"), List.of("volume", "ls", "-o", "json"), List.of("status"))) {
                int code = BallastCli.run(c.toArray(String[]::new), discard, err, socketEnv);
                if (code != 0) {
                    err.println("aot training: `ballast " + String.join(" ", c) + "` (over the local socket) exited with " + code);
                    failed++;
                }
            }
        }
        try (var files = java.nio.file.Files.walk(home)) { // the config holds the training node's token
            files.sorted(java.util.Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
        }
        System.exit(failed == 0 ? 0 : 1);
    }
}
