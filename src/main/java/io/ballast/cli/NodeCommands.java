package io.ballast.cli;

import io.ballast.attach.ProcessCommandRunner;
import io.ballast.common.BallastException;
import io.ballast.node.DefaultComponents;
import io.ballast.node.NodeConfig;
import io.ballast.node.NodeDaemon;
import io.ballast.node.logging.LogSetup;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;

@Command(name = "node", description = "Run a node daemon.", subcommands = NodeCommands.Start.class)
final class NodeCommands implements Runnable {
    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    /** Without a subcommand: a usage error (exit 2) that lists the subcommands. */
    @Override
    public void run() {
        throw new picocli.CommandLine.ParameterException(spec.commandLine(), "missing command; see the list below");
    }

    @ParentCommand
    BallastCli cli;

    @Command(name = "start", description = "Run a node in the foreground until SIGTERM (use `ballast up` for the background).")
    static final class Start implements Callable<Integer> {
        @ParentCommand
        NodeCommands parent;

        @Option(names = "--data-dir", required = true, paramLabel = "DIR", description = "Where the node keeps its pool, state and logs")
        Path dataDir;

        @Option(names = "--api-listen", paramLabel = "HOST:PORT", defaultValue = NodeConfig.DEFAULT_API_LISTEN,
                description = "REST API address (default: ${DEFAULT-VALUE}; port 0 picks one, see DIR/node.json)")
        String apiListen;

        @Option(names = "--nbd-listen", paramLabel = "HOST:PORT", defaultValue = NodeConfig.DEFAULT_NBD_LISTEN,
                description = "NBD TCP address (default: ${DEFAULT-VALUE}; `off` disables TCP)")
        String nbdListen;

        @Option(names = "--nbd-socket", paramLabel = "PATH", description = "NBD unix socket (default: DIR/nbd.sock)")
        Path nbdSocket;

        @Option(names = "--docker-plugin", paramLabel = "SOCKET", arity = "0..1",
                fallbackValue = "/run/docker/plugins/ballast.sock",
                description = "Serve the Docker volume plugin on SOCKET (default /run/docker/plugins/ballast.sock; off unless given)")
        Path dockerPluginSocket;

        @Override
        public Integer call() throws Exception {
            InetSocketAddress api = NodeConfig.parseAddress(apiListen);
            InetSocketAddress nbd = "off".equals(nbdListen) ? null : NodeConfig.parseAddress(nbdListen);
            NodeConfig config = new NodeConfig(dataDir, api, nbd, nbdSocket);
            Files.createDirectories(config.dataDir());
            LogSetup.daemon(config.logFile());
            NodeDaemon daemon = new NodeDaemon(config, new DefaultComponents(), new ProcessCommandRunner());
            try {
                daemon.start();
            } catch (java.net.BindException e) {
                throw BallastException.io("cannot listen on " + apiListen + " or " + nbdListen + ": " + e.getMessage()
                        + "; pick other addresses with --api-listen/--nbd-listen", e);
            } catch (java.io.IOException e) {
                throw BallastException.io("node start failed: " + e.getMessage(), e);
            }
            io.ballast.integrations.docker.DockerPlugin docker = null;
            if (dockerPluginSocket != null) {
                try {
                    docker = io.ballast.integrations.docker.DockerPlugin.start(daemon.volumes(), dockerPluginSocket,
                            config.dataDir().resolve("docker").resolve("mounts"));
                } catch (java.io.IOException e) {
                    daemon.close();
                    throw BallastException.io("docker plugin start failed on " + dockerPluginSocket + ": " + e.getMessage(), e);
                }
            }
            io.ballast.integrations.docker.DockerPlugin dockerPlugin = docker;
            // SIGTERM/SIGINT run shutdown hooks: stop cleanly (plugin first, then NBD closed, pool flushed and closed).
            Runtime.getRuntime().addShutdownHook(new Thread(() -> {
                if (dockerPlugin != null) {
                    dockerPlugin.close();
                }
                daemon.close();
            }, "ballast-shutdown"));
            parent.cli.out.println("Ballast node running: API " + daemon.apiUrl() + ", data " + config.dataDir());
            parent.cli.out.flush();
            new CountDownLatch(1).await(); // until the JVM exits
            return ExitCodes.OK;
        }
    }
}
