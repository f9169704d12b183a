package io.ballast.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.ballast.node.NodeConfig;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;

/** {@code up}, {@code down}, {@code status}: a local single-node Ballast under $BALLAST_HOME. */
final class LocalCommands {
    private LocalCommands() {}

    @Command(name = "up", description = "Start a local node in the background ($BALLAST_HOME/node-1, default ~/.ballast).")
    static final class Up implements Callable<Integer> {
        @ParentCommand
        BallastCli cli;

        @Option(names = "--api-listen", paramLabel = "HOST:PORT", defaultValue = NodeConfig.DEFAULT_API_LISTEN,
                description = "REST API address (default: ${DEFAULT-VALUE})")
        String apiListen;

        @Option(names = "--nbd-listen", paramLabel = "HOST:PORT", defaultValue = NodeConfig.DEFAULT_NBD_LISTEN,
                description = "NBD TCP address (default: ${DEFAULT-VALUE})")
        String nbdListen;

        @Option(names = "--timeout", paramLabel = "SECONDS", defaultValue = "60", description = "How long to wait for the node")
        int timeoutSeconds;

        @Override
        public Integer call() throws Exception {
            NodeConfig.parseAddress(apiListen);
            NodeConfig.parseAddress(nbdListen);
            LocalCluster local = new LocalCluster(cli.home());
            var existing = local.read();
            if (existing.isPresent() && new NodeClient(existing.get().apiUrl()).healthy()) {
                cli.err.println("Ballast is already running at " + existing.get().apiUrl());
                cli.out.println(existing.get().apiUrl());
                return ExitCodes.OK;
            }
            if (LocalCluster.livePid(local.nodeDir(1)).isPresent()) {
                cli.err.println("error: a node is running on " + local.nodeDir(1) + " but does not answer; try `ballast down`");
                return ExitCodes.CONFLICT;
            }
            List<LocalCluster.LocalNode> nodes = new ArrayList<>();
            nodes.add(local.startNode(1, apiListen, nbdListen, Duration.ofSeconds(timeoutSeconds)));
            local.write(new LocalCluster.LocalState(nodes.getFirst().apiUrl(), nodes));
            cli.err.println("Ballast is up: node-1 at " + nodes.getFirst().apiUrl() + " (data " + nodes.getFirst().dataDir()
                    + "); stop it with `ballast down`");
            cli.out.println(nodes.getFirst().apiUrl());
            return ExitCodes.OK;
        }
    }

    @Command(name = "down", description = "Stop the local node started by `ballast up` (SIGTERM, SIGKILL after a timeout).")
    static final class Down implements Callable<Integer> {
        @ParentCommand
        BallastCli cli;

        @Option(names = "--timeout", paramLabel = "SECONDS", defaultValue = "30", description = "Grace period before SIGKILL")
        int timeoutSeconds;

        @Override
        public Integer call() throws Exception {
            LocalCluster local = new LocalCluster(cli.home());
            List<Path> dirs = new ArrayList<>();
            local.read().ifPresent(s -> s.nodes().forEach(n -> dirs.add(Path.of(n.dataDir()))));
            if (dirs.isEmpty()) {
                dirs.add(local.nodeDir(1));
            }
            boolean stopped = false;
            for (Path dir : dirs) {
                var pid = LocalCluster.livePid(dir);
                if (pid.isPresent() && LocalCluster.stop(pid.get(), Duration.ofSeconds(timeoutSeconds))) {
                    cli.err.println("stopped " + dir.getFileName() + " (pid " + pid.get() + ")");
                    stopped = true;
                }
            }
            local.forget();
            if (!stopped) {
                cli.err.println("no local Ballast node was running");
            }
            return ExitCodes.OK;
        }
    }

    @Command(name = "status", description = "Show the node, pool capacity and volumes.")
    static final class Status implements Callable<Integer> {
        @ParentCommand
        BallastCli cli;

        @Mixin
        Output output;

        @Override
        public Integer call() {
            NodeClient client = new NodeClient(cli.resolveNode(output.node));
            JsonNode node = client.get("/v1/node");
            JsonNode volumes = client.get("/v1/volumes").path("volumes");
            if (output.json()) {
                ObjectNode both = Output.PRETTY.createObjectNode();
                both.set("node", node);
                both.set("volumes", volumes);
                Output.printJson(cli.out, both);
                return ExitCodes.OK;
            }
            var out = cli.out;
            JsonNode pool = node.path("pool");
            out.println("Node:      " + Output.text(node.path("nodeId")) + " (" + Output.text(node.path("state")) + ", pid "
                    + Output.text(node.path("pid")) + ")");
            out.println("API:       " + client.baseUrl());
            out.println("NBD:       " + Output.text(node.path("nbdTcp")) + ", " + Output.text(node.path("nbdSocket")));
            out.println("Data:      " + Output.text(node.path("dataDir")));
            out.println("Pool:      " + Output.size(pool.path("capacityBytes")) + " capacity, "
                    + Output.size(pool.path("freeBytes")) + " free, " + Output.size(pool.path("allocatedBytes"))
                    + " allocated by volumes");
            out.println("Volumes:   " + volumes.size());
            java.util.List<java.util.List<String>> rows = new ArrayList<>();
            for (JsonNode v : volumes) {
                JsonNode a = v.path("attachment");
                String state = a.isNull() || a.isMissingNode() ? "-"
                        : a.path("mountDir").isNull() ? "attached" : "mounted on " + a.path("mountDir").asText();
                rows.add(List.of("  " + v.path("name").asText(), Output.size(v.path("sizeBytes")),
                        Output.size(v.path("allocatedBytes")), state));
            }
            if (!rows.isEmpty()) {
                Output.table(out, List.of("  NAME", "SIZE", "ALLOCATED", "ATTACHMENT"), rows);
            }
            return ExitCodes.OK;
        }
    }
}
