package io.ballast.cli;

import com.fasterxml.jackson.databind.JsonNode;
import io.ballast.common.BallastException;
import io.ballast.common.ErrorCode;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;

/**
 * {@code ballast node pool add|remove}: pool directories of a running node (docs/node.md "Pools"). The
 * call goes to the node named, at the API address the cluster metadata has for it.
 */
@Command(name = "pool", description = "Add or remove a pool directory (a disk) of a running node.",
        subcommands = {NodePoolCommands.Add.class, NodePoolCommands.Remove.class, picocli.CommandLine.HelpCommand.class})
final class NodePoolCommands extends CommandGroup {
    @ParentCommand
    NodeCommands parent;

    /** A client of the named node's own API. */
    NodeClient nodeClient(Output output, String nodeId) {
        NodeClient any = parent.cli.client(output);
        JsonNode n = any.get("/v1/nodes/" + nodeId);
        String url = n.path("apiUrl").asText(null);
        if (url == null || url.isBlank()) {
            throw new BallastException(ErrorCode.UNAVAILABLE, "node " + nodeId + " has no API address in the cluster metadata");
        }
        return any.at(url);
    }

    @Command(name = "add", description = "Open another pool directory on a running node; new replicas may go there at once. "
            + "Recorded in the node's DATA/pools.json (kept on restarts).")
    static final class Add implements Callable<Integer> {
        @ParentCommand
        NodePoolCommands parent;

        @Mixin
        Output output;

        @Parameters(index = "0", paramLabel = "NODE")
        String nodeId;

        @Parameters(index = "1", paramLabel = "DIR", description = "An absolute directory on the node's host (a mounted disk)")
        String dir;

        @Option(names = "--name", paramLabel = "NAME", description = "The pool's name (default: the directory's last path element)")
        String name;

        @Override
        public Integer call() {
            java.util.Map<String, Object> body = new java.util.LinkedHashMap<>();
            body.put("dir", dir);
            if (name != null) {
                body.put("name", name);
            }
            JsonNode r = parent.nodeClient(output, nodeId).post("/v1/node/pools", body);
            output.done(parent.parent.cli.out, parent.parent.cli.err, r, "pool " + r.path("name").asText() + " added to "
                    + nodeId + " (" + r.path("directory").asText() + ", " + Output.size(r.path("freeBytes")) + " free of "
                    + Output.size(r.path("capacityBytes")) + ")");
            return ExitCodes.OK;
        }
    }

    @Command(name = "remove", aliases = "rm", description = "Move a pool's replicas to other nodes (as a drain does), then "
            + "let go of the directory (its files stay). No new replica goes there meanwhile.")
    static final class Remove implements Callable<Integer> {
        @ParentCommand
        NodePoolCommands parent;

        @Mixin
        Output output;

        @Parameters(index = "0", paramLabel = "NODE")
        String nodeId;

        @Parameters(index = "1", paramLabel = "POOL")
        String pool;

        @Option(names = "--wait", description = "Wait until the replicas have moved and the pool is gone")
        boolean await;

        @Option(names = "--timeout", paramLabel = "DURATION", defaultValue = "30m",
                description = "With --wait: give up after this long (default: ${DEFAULT-VALUE}); the removal goes on")
        String timeout;

        @Override
        public Integer call() throws Exception {
            NodeClient node = parent.nodeClient(output, nodeId);
            JsonNode r = node.delete("/v1/node/pools/" + pool);
            var out = parent.parent.cli.out;
            var err = parent.parent.cli.err;
            if (!output.json()) {
                r.path("replacementNodeIds").properties().forEach(e -> out.println(e.getKey() + ": replacement replica on " + e.getValue().asText()));
                r.path("unplaced").properties().forEach(e -> out.println(e.getKey() + ": NOT moved yet (retried): "
                        + e.getValue().asText()));
            }
            boolean removed = r.path("removed").asBoolean();
            if (!removed && await) {
                long deadline = System.nanoTime() + io.ballast.common.Durations.parseMs(timeout, "--timeout") * 1_000_000L;
                while (!removed && System.nanoTime() < deadline) {
                    Thread.sleep(1000);
                    removed = true;
                    for (JsonNode p : node.get("/v1/node").path("pool").path("pools")) {
                        removed &= !p.path("name").asText().equals(pool);
                    }
                }
                if (!removed) {
                    err.println("pool " + pool + " on " + nodeId + " still holds replicas after " + timeout
                            + "; the removal goes on (`ballast node inspect " + nodeId + "`)");
                    return ExitCodes.CONFLICT;
                }
            }
            output.done(out, err, ((com.fasterxml.jackson.databind.node.ObjectNode) r.deepCopy()).put("removed", removed), removed ? "pool " + pool + " removed from " + nodeId
                    : "removing pool " + pool + " from " + nodeId + ": its replicas are moving; it is let go once it holds none"
                            + " (`ballast node inspect " + nodeId + "`, or --wait)");
            return ExitCodes.OK;
        }
    }
}
