package io.ballast.cli;

import io.ballast.common.BallastException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * {@code ballast}: the command line. Data goes to stdout, messages to stderr, outcomes to the exit
 * code ({@link ExitCodes}). {@link #run} is the in-process entry point tests use.
 */
@Command(name = "ballast", mixinStandardHelpOptions = true, scope = CommandLine.ScopeType.INHERIT, version = "ballast " + io.ballast.node.NodeDaemon.VERSION,
        description = "Replicated block storage for containers.")
public final class BallastCli extends CommandGroup {
    /**
     * The top-level commands, in the order help lists them. Not in the annotation: picocli builds the
     * model of every command it is given, by reflection, at each start (a third of a CLI call's CPU
     * time), so {@link #commandLine(BallastCli, String[])} gives it the one a command line names.
     */
    static final List<Class<?>> COMMANDS = List.of(NodeCommands.class, VolumeCommands.class, SnapshotCommands.class, BackupCommands.class,
            LocalCommands.Up.class, LocalCommands.Down.class, LocalCommands.Status.class, ClusterCommands.Events.class,
            ClusterCommands.ClusterGroup.class, ClusterCommands.Version.class, AuthCommands.class, ConfigCommands.Group.class,
            ConfigCommands.Login.class, CommandLine.HelpCommand.class);

    @CommandLine.Option(names = "--ca-file", paramLabel = "FILE", scope = CommandLine.ScopeType.INHERIT,
            description = "The cluster CA certificate the node's HTTPS API is checked against (default: $BALLAST_CA_FILE,"
                    + " else the local cluster's, made by `ballast up`)")
    Path caFile;

    final PrintWriter out;
    final PrintWriter err;
    final Map<String, String> env;

    BallastCli(PrintWriter out, PrintWriter err, Map<String, String> env) {
        this.out = out;
        this.err = err;
        this.env = env;
    }

    public static void main(String[] args) {
        PrintWriter out = new PrintWriter(System.out, true);
        PrintWriter err = new PrintWriter(System.err, true);
        int code = run(args, out, err, System.getenv());
        out.flush();
        err.flush();
        System.exit(code);
    }

    /** Runs one command line; returns the exit code. */
    public static int run(String[] args, PrintWriter out, PrintWriter err, Map<String, String> env) {
        return run(args, out, err, env, true);
    }

    /** {@code quick} false: picocli parses every command line (tests compare the two roads). */
    static int run(String[] args, PrintWriter out, PrintWriter err, Map<String, String> env, boolean quick) {
        BallastCli root = new BallastCli(out, err, env);
        CliTrust.configure(CliTrust.caFileArg(args), env, root.home());
        ApiSocket.configure(env, root.home());
        try {
            VolumeCommands.ListCmd list = quick ? QuickCommands.volumeList(root, args) : null;
            if (list != null) {
                try {
                    return list.call();
                } catch (Exception e) {
                    return failed(e, err);
                }
            }
            CommandLine cl = commandLine(root, args);
            cl.setOut(out);
            cl.setErr(err);
            cl.setExecutionExceptionHandler((ex, cmd, parsed) -> failed(ex, err));
            return cl.execute(args);
        } finally {
            out.flush();
            err.flush();
        }
    }

    /** What a command that threw tells the user, and its exit code. */
    private static int failed(Exception ex, PrintWriter err) {
        switch (ex) {
            case NodeUnreachableException u -> {
                err.println("error: " + u.getMessage());
                return ExitCodes.UNREACHABLE;
            }
            case NotAuthorizedException a -> {
                err.println("error: " + a.getMessage());
                return ExitCodes.NOT_AUTHORIZED;
            }
            case BallastException b -> {
                err.println("error: " + b.getMessage());
                return ExitCodes.of(b.code());
            }
            default -> {
                err.println("error: unexpected " + ex);
                ex.printStackTrace(err);
                return ExitCodes.INTERNAL;
            }
        }
    }

    /** The whole command tree (help, docs checks). */
    static CommandLine commandLine(BallastCli root) {
        return commandLine(root, null);
    }

    /**
     * The command tree for {@code args}: the root and the one top-level command they name (with all
     * its subcommands), or every command when they name none or one not known (help, a usage error
     * with suggestions), or when {@code args} is null.
     */
    static CommandLine commandLine(BallastCli root, String[] args) {
        CommandLine cl = new CommandLine(root);
        String name = args == null ? null : commandName(args);
        List<Class<?>> named = name == null ? List.of() : COMMANDS.stream().filter(c -> names(c).contains(name)).toList();
        for (Class<?> c : named.isEmpty() || name.equals("help") ? COMMANDS : named) {
            cl.addSubcommand(c);
        }
        return cl;
    }

    /** The first argument that is not a root option (--ca-file takes a value), or null. */
    private static String commandName(String[] args) {
        for (int i = 0; i < args.length; i++) {
            if (args[i].equals("--ca-file")) {
                i++;
            } else if (!args[i].startsWith("-")) {
                return args[i];
            }
        }
        return null;
    }

    private static List<String> names(Class<?> c) {
        Command a = c.getAnnotation(Command.class);
        List<String> n = new java.util.ArrayList<>(List.of(a.aliases()));
        n.add(a.name());
        return n;
    }

    /** $BALLAST_HOME, default ~/.ballast. */
    Path home() {
        String h = env.get("BALLAST_HOME");
        return h != null && !h.isBlank() ? Path.of(h) : Path.of(System.getProperty("user.home"), ".ballast");
    }

    /** A client of the API the options name, with their credential ({@link ApiTarget}). */
    NodeClient client(Output output) {
        ApiTarget t = onNode(output, ApiTarget.resolve(output, env, home()));
        return new NodeClient(t.server(), t.token(), java.time.Duration.ofMinutes(5), socketFor(output, t));
    }

    NodeClient client(Output output, java.time.Duration requestTimeout) {
        ApiTarget t = onNode(output, ApiTarget.resolve(output, env, home()));
        return new NodeClient(t.server(), t.token(), requestTimeout, socketFor(output, t));
    }

    /** The command's server's local API socket; a forced one ($BALLAST_API_SOCKET) is not for another node named by --on. */
    private static UnixHttpClient socketFor(Output output, ApiTarget t) {
        return output.on == null ? ApiSocket.forTarget(t.server()) : ApiSocket.auto(t.server());
    }

    /** With {@code --on NODE}: the cluster (at the resolved server) says where NODE's API is. */
    private static ApiTarget onNode(Output output, ApiTarget t) {
        String name = output.on;
        if (name == null) {
            return t;
        }
        io.ballast.common.Names.requireName("node", name);
        com.fasterxml.jackson.databind.JsonNode n = new NodeClient(t.server(), t.token()).get("/v1/nodes/" + name);
        String state = n.path("state").asText("");
        if ("down".equals(state)) {
            throw io.ballast.common.BallastException.unavailable("node " + name + " is down (" + n.path("stateReason").asText("no heartbeat")
                    + "); `ballast node list` shows the members that are up");
        }
        String apiUrl = n.path("apiUrl").asText("");
        if (apiUrl.isEmpty()) {
            throw io.ballast.common.BallastException.unavailable("node " + name + " has no API address in the cluster state");
        }
        return new ApiTarget(ApiTarget.normalize(apiUrl), t.token(), t.contextName());
    }
}
