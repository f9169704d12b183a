package io.ballast.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.ballast.common.BallastException;
import io.ballast.common.ErrorCode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;

/**
 * {@code ballast node restart NODE}: one step of a rolling restart or upgrade (docs/operations.md
 * "Rolling upgrade"). Checks that the cluster keeps its quorum and every volume keeps {@code minInSync}
 * replicas in sync without the node, moves the attachments the node holds to another node, stops and
 * starts it (a node of the local cluster; for a service-managed node, waits while the operator restarts
 * the service), then waits until it is up and its replicas are in sync again.
 */
@Command(name = "restart", description = "Restart a node safely, one step of a rolling upgrade: check quorum and in-sync"
        + " replicas, move its attachments, stop it, start it (a local cluster's node; optionally on a new build) and wait"
        + " until it is up and its replicas are in sync.")
final class NodeRestartCommand implements Callable<Integer> {
    @ParentCommand
    NodeCommands parent;

    @Mixin
    Output output;

    @Parameters(paramLabel = "NODE", description = "The node to restart")
    String nodeId;

    @Option(names = "--class-path", paramLabel = "CLASSPATH", description = "Start the node on this build (a local"
            + " cluster's node): the new release's jar, or its lib/* (a rolling upgrade); default: the build it ran")
    String classPath;

    @Option(names = "--move-to", paramLabel = "NODE", description = "Where its attachments go (default: the first up"
            + " node with an in-sync replica of each)")
    String moveTo;

    @Option(names = "--timeout", paramLabel = "SECONDS", defaultValue = "300",
            description = "How long to wait for the node to come back and its replicas to be in sync")
    int timeoutSeconds;

    @Option(names = "--stop-timeout", paramLabel = "SECONDS", defaultValue = "30", description = "Grace period before SIGKILL")
    int stopTimeoutSeconds;

    /** A volume the node holds a replica of, or an attachment on it, as the safety check sees it. */
    record Holding(String volume, boolean attachedHere, String mountDir, List<String> inSyncElsewhere, int minInSync) {}

    /** An attachment moved off the node. */
    record Moved(String volume, String fromNodeId, String toNodeId, String nbdUri) {}

    private final long startNs = System.nanoTime();

    @Override
    public Integer call() throws Exception {
        NodeClient client = parent.cli.client(output);
        JsonNode cluster = client.get("/v1/cluster");
        JsonNode node = member(cluster, nodeId).orElseThrow(() -> BallastException.notFound("node " + nodeId
                + " is not a member of this cluster; `ballast node list` shows the members"));
        // 1. safe? quorum without it, minInSync elsewhere, no mount that cannot move
        List<String> refusals = new ArrayList<>();
        String quorum = quorumWithout(cluster, nodeId);
        if (quorum != null) {
            refusals.add(quorum);
        }
        List<Holding> held = holdings(cluster, nodeId);
        List<String> short_ = new ArrayList<>();
        List<String> mounted = new ArrayList<>();
        for (Holding h : held) {
            if (h.inSyncElsewhere().size() < h.minInSync()) {
                short_.add(h.volume() + " (in sync elsewhere: " + (h.inSyncElsewhere().isEmpty() ? "none" : String.join(",",
                        h.inSyncElsewhere())) + "; minInSync " + h.minInSync() + ")");
            }
            if (h.attachedHere() && h.mountDir() != null) {
                mounted.add(h.volume() + " mounted on " + h.mountDir());
            }
        }
        if (!short_.isEmpty()) {
            refusals.add("these volumes would have fewer than minInSync replicas in sync while " + nodeId + " is down (writes"
                    + " would stop): " + String.join(", ", short_) + "; wait until `ballast volume list` shows them healthy");
        }
        if (!mounted.isEmpty()) {
            refusals.add("attachments that cannot move while in use: " + String.join(", ", mounted) + " (the mount is on "
                    + nodeId + "'s host); stop their users and detach them (`ballast volume detach NAME`), then attach them"
                    + " on another node");
        }
        if (!refusals.isEmpty()) {
            throw BallastException.conflict("not restarting " + nodeId + ": " + String.join("; ", refusals));
        }
        String otherApi = otherUpApi(cluster, nodeId).orElseThrow(() -> BallastException.conflict("not restarting " + nodeId
                + ": no other node is up to follow the restart from"));
        NodeClient api = client.at(otherApi);
        // 2. move the attachments it holds
        List<Moved> moved = new ArrayList<>();
        for (Holding h : held) {
            if (h.attachedHere()) {
                moved.add(moveAttachment(client, cluster, h));
            }
        }
        // 3. stop and start it
        LocalCluster local = new LocalCluster(parent.cli.home());
        Optional<LocalCluster.LocalState> localState = local.read();
        Optional<LocalCluster.LocalNode> localNode = localState.flatMap(s -> s.nodes().stream()
                .filter(n -> n.name().equals(nodeId) && Path.of(n.dataDir()).equals(local.nodeDir(index(nodeId)))).findFirst());
        long stoppedAtNs;
        String stopHow;
        String before = node.path("buildVersion").asText("?") + "/" + node.path("protocolVersion").asText("1.0");
        Duration timeout = Duration.ofSeconds(timeoutSeconds);
        if (localNode.isPresent()) {
            Path dir = Path.of(localNode.get().dataDir());
            Optional<Long> pid = LocalCluster.livePid(dir);
            LocalCluster.Stopped stopped = pid.map(p -> LocalCluster.stop(p, Duration.ofSeconds(stopTimeoutSeconds)))
                    .orElse(LocalCluster.Stopped.NOT_RUNNING);
            stoppedAtNs = System.nanoTime();
            stopHow = switch (stopped) {
                case ON_SIGTERM -> "SIGTERM";
                case KILLED -> "SIGKILL after " + stopTimeoutSeconds + " s";
                case NOT_RUNNING -> "not running";
            };
            progress("stopped " + nodeId + " (" + stopHow + ")");
            String cp = classPath != null ? classPath : localNode.get().classPath();
            LocalCluster.LocalNode started = startLocal(local, localNode.get(), cp, timeout);
            List<LocalCluster.LocalNode> nodes = new ArrayList<>(localState.get().nodes());
            nodes.replaceAll(n -> n.name().equals(nodeId) ? started : n);
            String firstApi = nodes.getFirst().apiUrl();
            local.write(new LocalCluster.LocalState(firstApi, nodes));
            if (!firstApi.equals(localState.get().apiUrl()) && CliConfig.location(parent.cli.env) != null) {
                local.saveContext(new CliConfig(CliConfig.location(parent.cli.env)), firstApi, local.adminToken().orElse(null));
            }
            progress("started " + nodeId + " (pid " + started.pid() + ", API " + started.apiUrl()
                    + (cp != null ? ", class path " + cp : "") + ")");
        } else {
            stopHow = "service";
            progress(nodeId + " is not a node of the local cluster under " + parent.cli.home() + ": restart its service now"
                    + " (with the new release installed, for an upgrade); waiting for it to stop and come back");
            stoppedAtNs = awaitServiceRestart(client.at(node.path("apiUrl").asText()), timeout);
        }
        // 4. up and in sync. The record may still be the old process's (a node back before it was judged
        // down stays "up"): wait for the release the new process itself reports to reach it
        String runs = restartedVersion(client, localNode.isPresent() ? null : node.path("apiUrl").asText(), local);
        ObjectNode after = awaitBack(api, held, runs, timeout);
        long doneNs = System.nanoTime();
        if (output.json()) {
            ObjectNode o = Output.PRETTY.createObjectNode();
            o.put("nodeId", nodeId);
            ArrayNode m = o.putArray("movedAttachments");
            for (Moved x : moved) {
                ObjectNode j = m.addObject();
                j.put("volume", x.volume());
                j.put("fromNodeId", x.fromNodeId());
                j.put("toNodeId", x.toNodeId());
                j.put("nbdUri", x.nbdUri());
            }
            o.put("stoppedBy", stopHow);
            o.put("previousVersion", before);
            o.put("buildVersion", after.path("buildVersion").asText(null));
            o.put("protocolVersion", after.path("protocolVersion").asText(null));
            o.putPOJO("resyncedVolumes", held.stream().map(Holding::volume).toList());
            o.put("downMs", after.path("upAtNs").asLong() / 1_000_000 - stoppedAtNs / 1_000_000);
            o.put("inSyncMs", (doneNs - stoppedAtNs) / 1_000_000);
            o.put("totalMs", (doneNs - startNs) / 1_000_000);
            output.print(parent.cli.out, o);
        } else {
            parent.cli.out.println("restarted " + nodeId + " (" + before + " -> " + after.path("buildVersion").asText("?") + "/"
                    + after.path("protocolVersion").asText("?") + "): " + moved.size() + " attachment(s) moved, "
                    + held.size() + " volume(s) in sync again " + seconds(doneNs - stoppedAtNs) + " after it stopped");
        }
        return ExitCodes.OK;
    }

    private void progress(String line) {
        parent.cli.err.println(String.format("[%5.1fs] ", (System.nanoTime() - startNs) / 1e9) + line);
    }

    private static String seconds(long ns) {
        return String.format("%.1f s", ns / 1e9);
    }

    static Optional<JsonNode> member(JsonNode cluster, String id) {
        for (JsonNode n : cluster.path("nodes")) {
            if (n.path("nodeId").asText().equals(id)) {
                return Optional.of(n);
            }
        }
        return Optional.empty();
    }

    /** Why the voters left up without {@code id} would not be a majority; null when they are. */
    static String quorumWithout(JsonNode cluster, String id) {
        List<String> voters = new ArrayList<>();
        cluster.path("voterNodeIds").forEach(v -> voters.add(v.asText()));
        if (!voters.contains(id)) {
            return null; // a listener: Raft does not miss it
        }
        List<String> upOthers = new ArrayList<>();
        List<String> notUp = new ArrayList<>();
        for (String v : voters) {
            if (v.equals(id)) {
                continue;
            }
            String state = member(cluster, v).map(n -> n.path("state").asText()).orElse("unknown");
            if (state.equals("up")) {
                upOthers.add(v);
            } else {
                notUp.add(v + " " + state);
            }
        }
        int majority = voters.size() / 2 + 1;
        if (upOthers.size() >= majority) {
            return null;
        }
        return "the Raft quorum would be lost: " + upOthers.size() + " of " + voters.size() + " voters would be up without "
                + id + ", " + majority + " needed" + (notUp.isEmpty() ? "" : " (" + String.join(", ", notUp) + ")")
                + "; bring the other voters back first";
    }

    /** The volumes with a replica on {@code id} or attached there. */
    static List<Holding> holdings(JsonNode cluster, String id) {
        List<Holding> out = new ArrayList<>();
        for (JsonNode v : cluster.path("volumes").path("list")) {
            boolean replica = false;
            for (JsonNode r : v.path("replicaNodeIds")) {
                replica |= r.asText().equals(id);
            }
            JsonNode a = v.path("attachment");
            boolean attached = a.isObject() && a.path("nodeId").asText().equals(id);
            if (!replica && !attached) {
                continue;
            }
            List<String> elsewhere = new ArrayList<>();
            v.path("inSyncNodeIds").forEach(n -> {
                if (!n.asText().equals(id)) {
                    elsewhere.add(n.asText());
                }
            });
            out.add(new Holding(v.path("name").asText(), attached, attached && a.path("mountDir").isTextual()
                    ? a.path("mountDir").asText() : null, elsewhere, replica ? v.path("minInSync").asInt(1) : 0));
        }
        return out;
    }

    static Optional<String> otherUpApi(JsonNode cluster, String id) {
        for (JsonNode n : cluster.path("nodes")) {
            if (!n.path("nodeId").asText().equals(id) && n.path("state").asText().equals("up")) {
                return Optional.of(n.path("apiUrl").asText());
            }
        }
        return Optional.empty();
    }

    /** Detach on the node, attach on an up node with an in-sync replica (its engine reads locally). */
    private Moved moveAttachment(NodeClient client, JsonNode cluster, Holding h) {
        String target = null;
        if (moveTo != null) {
            if (moveTo.equals(nodeId) || !h.inSyncElsewhere().contains(moveTo)
                    || !member(cluster, moveTo).map(m -> m.path("state").asText().equals("up")).orElse(false)) {
                throw BallastException.conflict("not restarting " + nodeId + ": --move-to " + moveTo + " is not an up node with"
                        + " an in-sync replica of " + h.volume() + " (in sync elsewhere: " + String.join(",", h.inSyncElsewhere()) + ")");
            }
            target = moveTo;
        }
        for (String n : target != null ? List.<String>of() : h.inSyncElsewhere()) {
            if (member(cluster, n).map(m -> m.path("state").asText().equals("up")).orElse(false)) {
                target = n;
                break;
            }
        }
        if (target == null) {
            throw BallastException.conflict("not restarting " + nodeId + ": " + h.volume() + " is attached there and no other up"
                    + " node holds an in-sync replica to serve it");
        }
        String from = member(cluster, nodeId).orElseThrow().path("apiUrl").asText();
        String to = member(cluster, target).orElseThrow().path("apiUrl").asText();
        client.at(from).post("/v1/volumes/" + h.volume() + "/detach", null);
        JsonNode a = client.at(to).post("/v1/volumes/" + h.volume() + "/attach", null);
        String nbd = a.path("nbdUri").asText(null);
        progress("moved " + h.volume() + "'s attachment from " + nodeId + " to " + target + " (" + nbd + "): NBD clients"
                + " reconnect there");
        return new Moved(h.volume(), nodeId, target, nbd);
    }

    static int index(String localName) {
        try {
            return localName.startsWith("node-") ? Integer.parseInt(localName.substring(5)) : -1;
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    /** Starts a local node again as `ballast up` starts it: the recorded listen options, CSI, Docker plugin. */
    private LocalCluster.LocalNode startLocal(LocalCluster local, LocalCluster.LocalNode n, String cp, Duration timeout)
            throws java.io.IOException {
        int i = index(n.name());
        LocalCluster.UpOptions o = local.readUpOptions().orElse(new LocalCluster.UpOptions(
                io.ballast.node.NodeConfig.DEFAULT_API_LISTEN, io.ballast.node.NodeConfig.DEFAULT_NBD_LISTEN,
                io.ballast.cluster.ClusterConfig.DEFAULT_RAFT_LISTEN, false, null, null));
        List<String> args = new ArrayList<>();
        if (i == 1 && o.dockerPluginSocket() != null) {
            args.addAll(List.of("--docker-plugin", o.dockerPluginSocket()));
        }
        if (o.csi()) {
            args.addAll(List.of("--csi-endpoint", "unix://" + local.nodeDir(i).toAbsolutePath().resolve("csi.sock")));
            if (o.csiPathRoot() != null) {
                args.addAll(List.of("--csi-path-root", o.csiPathRoot()));
            }
        }
        if (!Files.exists(io.ballast.security.TlsDir.of(local.nodeDir(1)).caCert())) {
            args.add("--insecure"); // a cluster made --insecure: its nodes have no certificates
        }
        return local.startNode(i, LocalCommands.Up.nth(o.apiListen(), i), LocalCommands.Up.nth(o.nbdListen(), i),
                LocalCommands.Up.nth(o.raftListen(), i), null, null, args, cp, timeout);
    }

    /**
     * The release the restarted process reports about itself ({@code GET /v1/node}), from its own API
     * ({@code serviceApi}, or the local cluster's record of it); null when it does not answer.
     */
    private String restartedVersion(NodeClient client, String serviceApi, LocalCluster local) {
        try {
            String url = serviceApi;
            if (url == null) {
                url = local.read().flatMap(s -> s.nodes().stream().filter(n -> n.name().equals(nodeId)).findFirst())
                        .map(LocalCluster.LocalNode::apiUrl).orElse(null);
            }
            return url == null ? null : client.at(url).get("/v1/node").path("version").asText(null);
        } catch (RuntimeException e) {
            return null;
        }
    }

    /** A service-managed node: until its API answers with a new start time (it stopped and came back). */
    private long awaitServiceRestart(NodeClient nodeApi, Duration timeout) {
        String startedAt = nodeApi.get("/v1/node").path("startedAt").asText("");
        long deadline = System.nanoTime() + timeout.toNanos();
        long stoppedAtNs = -1;
        while (System.nanoTime() < deadline) {
            try {
                String now = nodeApi.get("/v1/node").path("startedAt").asText("");
                if (!now.equals(startedAt)) {
                    return stoppedAtNs < 0 ? System.nanoTime() : stoppedAtNs;
                }
            } catch (RuntimeException e) {
                if (stoppedAtNs < 0) {
                    stoppedAtNs = System.nanoTime();
                    progress(nodeId + " stopped");
                }
            }
            io.ballast.common.Sleeps.sleepMs(200);
        }
        throw new BallastException(ErrorCode.UNAVAILABLE, nodeId + " was not restarted within " + timeout.toSeconds() + " s");
    }

    /**
     * Until the node is up in the metadata and every volume it holds is healthy with its replica in sync,
     * printing each step; answers the node's record (with {@code upAtNs}).
     */
    private ObjectNode awaitBack(NodeClient api, List<Holding> held, String runsVersion, Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        Set<String> waiting = new LinkedHashSet<>();
        held.forEach(h -> waiting.add(h.volume()));
        ObjectNode up = null;
        String last = "no answer";
        Map<String, String> shown = new LinkedHashMap<>();
        while (System.nanoTime() < deadline) {
            try {
                JsonNode c = api.get("/v1/cluster");
                JsonNode n = member(c, nodeId).orElseThrow();
                if (up == null && n.path("state").asText().equals("up") && n.path("protocolVersion").isTextual()
                        && n.path("nbdTcp").isTextual() && (runsVersion == null || runsVersion.equals(n.path("buildVersion").asText()))) {
                    up = n.deepCopy();
                    up.put("upAtNs", System.nanoTime());
                    progress(nodeId + " is up (Ballast " + n.path("buildVersion").asText("?") + ", cluster protocol "
                            + n.path("protocolVersion").asText() + ")");
                }
                if (up != null) {
                    for (JsonNode v : c.path("volumes").path("list")) {
                        String name = v.path("name").asText();
                        if (!waiting.contains(name)) {
                            continue;
                        }
                        boolean inSync = false;
                        for (JsonNode s : v.path("inSyncNodeIds")) {
                            inSync |= s.asText().equals(nodeId);
                        }
                        boolean replica = false;
                        for (JsonNode r : v.path("replicaNodeIds")) {
                            replica |= r.asText().equals(nodeId);
                        }
                        if ((inSync || !replica) && v.path("health").asText().equals("healthy")
                                && (!replica || !v.path("attachment").isObject() || engineInSync(api, name))) {
                            waiting.remove(name);
                            progress(name + ": in sync" + (replica ? " on " + nodeId : "") + ", healthy");
                        } else if (!v.path("health").asText().equals(shown.get(name))) {
                            shown.put(name, v.path("health").asText());
                            progress(name + ": " + v.path("health").asText() + ", waiting for " + nodeId + "'s replica to resync");
                        }
                    }
                    if (waiting.isEmpty()) {
                        return up;
                    }
                    last = "waiting for " + String.join(", ", waiting) + " to be in sync on " + nodeId;
                } else {
                    last = nodeId + " is " + n.path("state").asText();
                }
            } catch (RuntimeException e) {
                last = e.getMessage();
            }
            io.ballast.common.Sleeps.sleepMs(200);
        }
        throw new BallastException(ErrorCode.UNAVAILABLE, nodeId + " did not come back in sync within " + timeout.toSeconds()
                + " s: " + last);
    }

    /** The engine's own view (the metadata's in-sync set follows it through Raft): the node in sync, no resync running. */
    private boolean engineInSync(NodeClient api, String volume) {
        JsonNode status = api.get("/v1/volumes/" + volume + "?follow=engine").path("engine").path("status");
        boolean in = false;
        for (JsonNode n : status.path("inSyncNodeIds")) {
            in |= n.asText().equals(nodeId);
        }
        return in && status.path("resyncs").isEmpty();
    }

}
