package io.ballast.cli;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;

/** {@code ballast config} and {@code ballast login}: the CLI's contexts ({@link CliConfig}, docs/cli.md). */
final class ConfigCommands {
    private ConfigCommands() {}

    @Command(name = "config", description = "The CLI's contexts (server, CA, token), like a kubeconfig.",
            subcommands = {GetContexts.class, UseContext.class, SetContext.class})
    static final class Group extends CommandGroup {
        @ParentCommand
        BallastCli cli;

        CliConfig config() {
            return new CliConfig(CliConfig.location(cli.env));
        }
    }

    @Command(name = "get-contexts", description = "List the contexts (never their tokens); * marks the current one.")
    static final class GetContexts implements Callable<Integer> {
        @ParentCommand
        Group group;

        @Option(names = {"-o", "--output"}, paramLabel = "FORMAT", defaultValue = "human",
                description = "Output format: ${COMPLETION-CANDIDATES} (default: ${DEFAULT-VALUE})")
        Output.Format format;

        @Override
        public Integer call() {
            CliConfig.File f = group.config().read();
            if (format == Output.Format.json || format == Output.Format.yaml) {
                List<Map<String, Object>> out = new ArrayList<>();
                for (CliConfig.Context c : f.contexts()) {
                    Map<String, Object> m = new LinkedHashMap<>();
                    m.put("name", c.name());
                    m.put("server", c.server());
                    m.put("caFile", c.caFile());
                    m.put("hasToken", c.token() != null);
                    m.put("current", c.name().equals(f.currentContext()));
                    out.add(m);
                }
                Output.print(group.cli.out, Map.of("contexts", out), format);
                return ExitCodes.OK;
            }
            List<List<String>> rows = new ArrayList<>();
            for (CliConfig.Context c : f.contexts()) {
                rows.add(List.of(c.name().equals(f.currentContext()) ? "*" : "", c.name(), c.server() == null ? "-" : c.server(),
                        c.caFile() == null ? "-" : c.caFile(), c.token() == null ? "no" : "yes"));
            }
            Output.table(group.cli.out, List.of("CURRENT", "NAME", "SERVER", "CA", "TOKEN"), rows);
            return ExitCodes.OK;
        }
    }

    @Command(name = "use-context", description = "Make a context the current one.")
    static final class UseContext implements Callable<Integer> {
        @ParentCommand
        Group group;

        @Parameters(paramLabel = "NAME")
        String name;

        @Override
        public Integer call() throws Exception {
            group.config().use(name);
            group.cli.err.println("switched to context " + name);
            return ExitCodes.OK;
        }
    }

    @Command(name = "set-context", description = "Create or change a context (only the options given change).")
    static final class SetContext implements Callable<Integer> {
        @ParentCommand
        Group group;

        @Parameters(paramLabel = "NAME")
        String name;

        @Option(names = "--server", paramLabel = "HOST:PORT|URL", description = "The API address")
        String server;

        // --ca-file is the root option (inherited by every command): the CA saved in the context

        @Option(names = "--token-file", paramLabel = "FILE", description = "File holding the API token ('-': stdin)")
        Path tokenFile;

        @Option(names = "--current", description = "Also make it the current context")
        boolean current;

        @Override
        public Integer call() throws Exception {
            CliConfig.Context c = group.config().put(new CliConfig.Context(name, server == null ? null : ApiTarget.normalize(server),
                    group.cli.caFile == null ? null : group.cli.caFile.toAbsolutePath().toString(),
                    tokenFile == null ? null : ApiTarget.readTokenFile(tokenFile)), current);
            group.cli.err.println("context " + name + " set (server " + c.server() + ") in " + group.config().path());
            return ExitCodes.OK;
        }
    }

    @Command(name = "login", description = "Check a token against a server and save both as a context (made current).")
    static final class Login implements Callable<Integer> {
        @ParentCommand
        BallastCli cli;

        @Option(names = "--server", required = true, paramLabel = "HOST:PORT|URL", description = "The API address")
        String server;

        @Option(names = "--token-file", paramLabel = "FILE", description = "File holding the token (default: read it from stdin)")
        Path tokenFile;

        @Option(names = "--context", paramLabel = "NAME", description = "The context's name (default: the server's HOST:PORT)")
        String context;

        // --ca-file is the root option (inherited by every command): the CA saved in the context

        @Override
        public Integer call() throws Exception {
            String url = ApiTarget.normalize(server);
            String token = ApiTarget.readTokenFile(tokenFile == null ? Path.of("-") : tokenFile);
            JsonNode me = new NodeClient(url, token).get("/v1/auth/whoami"); // a wrong token stops here (exit 10)
            String name = context != null ? context : url.replaceFirst("^https?://", "");
            CliConfig config = new CliConfig(CliConfig.location(cli.env));
            config.put(new CliConfig.Context(name, url, cli.caFile == null ? null : cli.caFile.toAbsolutePath().toString(), token), true);
            cli.err.println("logged in to " + url + " as " + me.path("name").asText() + " (" + me.path("role").asText()
                    + "); context " + name + " saved in " + config.path() + " and made current");
            return ExitCodes.OK;
        }
    }
}
