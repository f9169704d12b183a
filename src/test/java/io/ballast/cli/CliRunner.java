package io.ballast.cli;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.HashMap;
import java.util.Map;

/** Runs BallastCli in this JVM and captures what a user would see. Shared by the CLI and system tests. */
public final class CliRunner {
    public record Result(int exit, String out, String err) {}

    private final Map<String, String> env = new HashMap<>();

    public CliRunner env(String key, String value) {
        env.put(key, value);
        return this;
    }

    /** Calls go to {@code url} with {@code token} (the environment a user would set). */
    public CliRunner server(String url, String token) {
        env.put("BALLAST_SERVER", url);
        env.put("BALLAST_TOKEN", token);
        return this;
    }

    public Result run(String... args) {
        return run(true, args);
    }

    /** As {@link #run}, every command line parsed by picocli (none taken by QuickCommands). */
    Result picocli(String... args) {
        return run(false, args);
    }

    private Result run(boolean quick, String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code = BallastCli.run(args, new PrintWriter(out, true), new PrintWriter(err, true), Map.copyOf(env), quick);
        return new Result(code, out.toString(), err.toString());
    }
}
