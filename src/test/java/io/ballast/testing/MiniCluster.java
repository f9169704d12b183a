package io.ballast.testing;

import io.ballast.attach.ProcessCommandRunner;
import io.ballast.cluster.ClusterConfig;
import io.ballast.cluster.ClusterMember;
import io.ballast.cluster.ClusterTimings;
import io.ballast.cluster.NodeRecord;
import io.ballast.node.DefaultComponents;
import io.ballast.node.NodeConfig;
import io.ballast.node.NodeDaemon;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.BooleanSupplier;

/**
 * An in-process cluster of real node daemons (file pools, NBD servers, REST APIs, Ratis over gRPC on
 * loopback) with fast timings: start, kill, restart and isolate nodes. Node i has id {@code node-i},
 * data in {@code root/node-i} and, unless told otherwise, label {@code zone=z<i>}.
 *
 * <p>Isolation is the {@link io.ballast.cluster.RaftNode#isolate()} seam: the node's Raft server is
 * closed and its Raft client refuses to send, so no Raft message goes in or out, while its REST API
 * keeps answering (with 503 for anything that needs the cluster). This models a full partition of one
 * node; asymmetric partitions need network namespaces (not done yet).
 */
public final class MiniCluster implements AutoCloseable {
    public static final String TOKEN = "test-token-0123456789";

    private final Path root;
    private final ClusterTimings timings;
    private final List<NodeDaemon> nodes = new ArrayList<>();
    private final List<Map<String, String>> labels = new ArrayList<>();
    /** The engine host of each node, by index (test double: {@link FakeEngineHost}). */
    private final Map<Integer, FakeEngineHost> engines = new java.util.concurrent.ConcurrentHashMap<>();
    private final int maxVoters;
    /** Null: plaintext (the default here); else every node runs mutual TLS from node-1's CA. */
    private io.ballast.security.TlsSettings tls;
    /** Real replication engines instead of {@link FakeEngineHost}. */
    private boolean realEngines;
    /** --pool directories by node index (none: DATA/pool, or what DATA/pools.json records). */
    private final Map<Integer, List<io.ballast.storage.PoolDirectory>> pools = new java.util.concurrent.ConcurrentHashMap<>();

    public MiniCluster(Path root, ClusterTimings timings) {
        this(root, timings, 0);
    }

    /** {@code maxVoters} 0: the default (5); fewer lets a small cluster have listeners. */
    public MiniCluster(Path root, ClusterTimings timings, int maxVoters) {
        this.root = root;
        this.timings = timings;
        this.maxVoters = maxVoters;
    }

    /** Secures every node added from now on with TLS (node-1 makes the CA; joiners pin it through the join token). */
    public MiniCluster withTls(io.ballast.security.TlsSettings settings) {
        this.tls = settings;
        return this;
    }

    /** Node {@code i} starts (and restarts) with these --pool directories; an empty list drops them. */
    public MiniCluster withPools(int i, List<io.ballast.storage.PoolDirectory> dirs) {
        pools.put(i, List.copyOf(dirs));
        return this;
    }

    /** Nodes added from now on run the production replication engines (real replication port). */
    public MiniCluster withRealEngines() {
        this.realEngines = true;
        return this;
    }

    /** Starts {@code n} nodes with mutual TLS, node certificates good for {@code certLifetime}. */
    public static MiniCluster startTls(Path root, int n, Duration certLifetime) throws IOException {
        MiniCluster c = new MiniCluster(root, ClusterTimings.fast())
                .withTls(new io.ballast.security.TlsSettings(false, null, null, certLifetime));
        for (int i = 1; i <= n; i++) {
            c.add(Map.of("zone", "z" + i));
        }
        return c;
    }

    /** The token a node joins with: with TLS, node-1's join token (secret and CA fingerprint). */
    public String joinToken() {
        return tls == null ? TOKEN : node(1).member().joinToken();
    }

    /** Starts {@code n} nodes: node-1 bootstraps, the others join through node-1's API. */
    public static MiniCluster start(Path root, int n) throws IOException {
        MiniCluster c = new MiniCluster(root, ClusterTimings.fast());
        for (int i = 1; i <= n; i++) {
            c.add(Map.of("zone", "z" + i));
        }
        return c;
    }

    /** Adds a node with these labels (joins through the first live node). */
    public NodeDaemon add(Map<String, String> nodeLabels) throws IOException {
        return add(nodeLabels, nodes.isEmpty() ? TOKEN : joinToken());
    }

    /**
     * Adds a node that bootstraps (the first) or joins with {@code token}, e.g. one an operator made with
     * the CA before the cluster existed. A node that fails to start is not added.
     */
    public NodeDaemon add(Map<String, String> nodeLabels, String token) throws IOException {
        int i = nodes.size() + 1;
        labels.add(nodeLabels);
        nodes.add(null);
        try {
            NodeDaemon d = launch(i, token, "node-" + i);
            nodes.set(i - 1, d);
            return d;
        } catch (IOException | RuntimeException e) {
            labels.removeLast();
            nodes.removeLast();
            throw e;
        }
    }

    public NodeConfig config(int i, String token, String nodeId, String join) {
        ClusterConfig cc = new ClusterConfig(nodeId, join, token, labels.get(i - 1), "127.0.0.1:0", 0,
                ClusterConfig.DEFAULT_OVERCOMMIT, timings, maxVoters);
        // with TLS, NBD over TCP wants a client certificate: such clusters also get the local unix socket
        NodeConfig c = new NodeConfig(root.resolve("node-" + i), new InetSocketAddress("127.0.0.1", 0),
                new InetSocketAddress("127.0.0.1", 0), tls == null ? null : root.resolve("node-" + i).resolve("nbd.sock"), cc)
                .withPools(pools.getOrDefault(i, List.of()));
        return tls == null ? c : c.withTls(tls);
    }

    private NodeDaemon launch(int i, String token, String nodeId) throws IOException {
        String join = null;
        if (i > 1 || nodes.stream().anyMatch(d -> d != null && d.state() == io.ballast.node.NodeState.RUNNING)) {
            join = live().stream().filter(d -> d != null).findFirst().map(d -> d.apiUrl().replace("https://", "").replace("http://", "")).orElse(null);
        }
        return new NodeDaemon(config(i, token, nodeId, join), components(i), new ProcessCommandRunner()).start();
    }

    /** Production components, with the engine host replaced by a {@link FakeEngineHost}. */
    private io.ballast.node.NodeComponents components(int i) {
        return new DefaultComponents() {
            @Override
            public io.ballast.replication.EngineHost engineHost(EngineContext ctx) {
                if (realEngines) {
                    return super.engineHost(ctx);
                }
                FakeEngineHost h = FakeEngineHost.of(ctx);
                engines.put(i, h);
                return h;
            }
        };
    }

    public FakeEngineHost engines(int i) {
        return engines.get(i);
    }

    public NodeDaemon node(int i) {
        return nodes.get(i - 1);
    }

    public int size() {
        return nodes.size();
    }

    public List<NodeDaemon> live() {
        return nodes.stream().filter(d -> d != null && d.state() == io.ballast.node.NodeState.RUNNING
                && !d.member().raft().isolated()).toList();
    }

    /** The bootstrap admin token node 1 wrote when it created the cluster (docs/security.md). */
    public String adminToken() {
        try {
            return java.nio.file.Files.readString(root.resolve("node-1").resolve(io.ballast.cluster.ApiTokens.ADMIN_TOKEN_FILE)).strip();
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    /** An admin's client of node {@code i}'s API. */
    public io.ballast.cli.NodeClient client(int i) {
        return new io.ballast.cli.NodeClient(url(i), adminToken());
    }

    public io.ballast.cli.NodeClient client(int i, Duration requestTimeout) {
        return new io.ballast.cli.NodeClient(url(i), adminToken(), requestTimeout);
    }

    public String url(int i) {
        return node(i).apiUrl();
    }

    /** The index of the node that leads, once one does (among live nodes). */
    public int awaitLeader() {
        int[] found = {-1};
        await(Duration.ofSeconds(30), "a Raft leader", () -> {
            for (int i = 1; i <= nodes.size(); i++) {
                NodeDaemon d = nodes.get(i - 1);
                if (d != null && d.state() == io.ballast.node.NodeState.RUNNING && !d.member().raft().isolated()
                        && d.member().raft().isLeader()) {
                    found[0] = i;
                    return true;
                }
            }
            return false;
        });
        return found[0];
    }

    /** Waits until live node {@code observer}'s metadata shows {@code nodeId} in {@code state}. */
    public void awaitNodeState(int observer, String nodeId, String state) {
        await(Duration.ofSeconds(30), nodeId + " " + state, () -> node(observer).member().state().node(nodeId)
                .map(NodeRecord::state).map(state::equals).orElse(false));
    }

    /** Stops node i (like a crash for Raft: everything it acknowledged is on disk). */
    public void kill(int i) {
        node(i).close();
    }

    /** Starts node i again on its data directory; it rejoins with the identity in DATA/cluster.json. */
    public NodeDaemon restart(int i) throws IOException {
        if (node(i).state() != io.ballast.node.NodeState.STOPPED) {
            node(i).close();
        }
        NodeDaemon d = new NodeDaemon(config(i, null, "node-" + i, null), components(i), new ProcessCommandRunner());
        nodes.set(i - 1, d);
        d.start();
        return d;
    }

    /** Starts a node that tries to join with the given token and id; for tests of refused joins. */
    public NodeDaemon tryJoin(int slot, String token, String nodeId, Map<String, String> nodeLabels) throws IOException {
        while (labels.size() < slot) {
            labels.add(nodeLabels);
        }
        labels.set(slot - 1, nodeLabels);
        String join = live().getFirst().apiUrl().replace("https://", "").replace("http://", "");
        return new NodeDaemon(config(slot, token, nodeId, join), components(slot), new ProcessCommandRunner()).start();
    }

    public void isolate(int i) throws IOException {
        node(i).member().raft().isolate();
    }

    public void heal(int i) throws IOException {
        node(i).member().raft().heal();
    }

    public ClusterMember member(int i) {
        return node(i).member();
    }

    public static void await(Duration timeout, String what, BooleanSupplier condition) {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (System.nanoTime() < deadline) {
            try {
                if (condition.getAsBoolean()) {
                    return;
                }
            } catch (RuntimeException ignored) {
                // not yet
            }
            try {
                Thread.sleep(50);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException(e);
            }
        }
        throw new AssertionError("timed out after " + timeout.toSeconds() + " s waiting for " + what);
    }

    public Optional<Path> dataDir(int i) {
        return Optional.of(root.resolve("node-" + i));
    }

    @Override
    public void close() {
        for (NodeDaemon d : nodes) {
            if (d != null) {
                d.close();
            }
        }
    }
}
