package io.ballast.cli;

import io.ballast.attach.ProcessCommandRunner;
import io.ballast.cluster.ClusterConfig;
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

@Command(name = "node", description = "Run a node daemon; list, inspect, cordon, drain and remove cluster members; add and remove pools.",
        subcommands = {NodeCommands.Start.class, ClusterCommands.NodeList.class, ClusterCommands.NodeInspect.class,
                ClusterCommands.Cordon.class, ClusterCommands.Uncordon.class, ClusterCommands.Drain.class,
                ClusterCommands.Remove.class, NodeRestartCommand.class, NodeCleanupCommand.class, NodePoolCommands.class})
final class NodeCommands extends CommandGroup {

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

        @Option(names = "--nbd-tls-dir", paramLabel = "DIR", description = "Require TLS with client certificates on the "
                + "NBD TCP listener: DIR holds ca-cert.pem (CA of client certificates), server-cert.pem and server-key.pem "
                + "(the layout of libnbd and qemu); replaced files apply to new connections. The unix socket stays plaintext")
        Path nbdTlsDir;

        @Option(names = "--nbd-tls-policy", paramLabel = "POLICY", defaultValue = "required",
                description = "With --nbd-tls-dir: `required` (default; plaintext TCP clients are refused) or `optional` "
                        + "(plaintext TCP still served: for a migration or a benchmark only)")
        String nbdTlsPolicy;

        @Option(names = "--raft-listen", paramLabel = "HOST:PORT", defaultValue = ClusterConfig.DEFAULT_RAFT_LISTEN,
                description = "Raft (metadata replication) address (default: ${DEFAULT-VALUE}; port 0 picks one, kept across restarts)")
        String raftListen;

        @Option(names = "--join", paramLabel = "HOST:PORT", description = "API address of any member of the cluster to join; "
                + "without it, the first start bootstraps a new cluster")
        String join;

        @Option(names = "--token", paramLabel = "TOKEN", description = "Cluster token; visible to every user in `ps`, "
                + "prefer --token-file or $BALLAST_CLUSTER_TOKEN (the first node generates one into DIR/cluster-token)")
        String token;

        @Option(names = "--token-file", paramLabel = "PATH", description = "File holding the cluster token (e.g. a copy of "
                + "the first node's DIR/cluster-token); default: $BALLAST_CLUSTER_TOKEN")
        Path tokenFile;

        @Option(names = "--insecure", description = "No TLS: the API, Raft and replication ports accept anyone, in plaintext"
                + " (benchmarks on a trusted network only; the node warns on every start)")
        boolean insecure;

        @Option(names = "--ca-cert", paramLabel = "FILE", description = "Bring your own cluster CA (first node only): its"
                + " certificate, PEM; copied to DIR/tls/ca.crt. Default: the first node makes one")
        Path caCert;

        @Option(names = "--ca-key", paramLabel = "FILE", description = "The private key of --ca-cert, PEM (unencrypted);"
                + " copied to DIR/tls/ca.key (0600)")
        Path caKey;

        @Option(names = "--cert-lifetime", paramLabel = "DURATION", defaultValue = "30d",
                description = "Lifetime of node certificates, renewed at 2/3 of it without a restart (e.g. 30d, 12h, 90s;"
                        + " default: ${DEFAULT-VALUE})")
        String certLifetime;

        @Option(names = "--node-id", paramLabel = "ID", description = "This node's id (default: generated once, DIR/node-id)")
        String nodeId;

        @Option(names = "--labels", paramLabel = "K=V,...", description = "Failure-domain labels, e.g. zone=a,rack=r1")
        String labels;

        @Option(names = "--pool", paramLabel = "[NAME=]DIR", description = "A pool directory (a disk), repeatable: "
                + "--pool /mnt/d1 --pool /mnt/d2; named after the directory unless NAME= is given. Recorded in DIR/pools.json "
                + "and opened at every start (default: DIR/pool; docs/node.md, \"Pools\")")
        java.util.List<String> pools = new java.util.ArrayList<>();

        @Option(names = "--capacity", paramLabel = "SIZE", description = "Cap on what placement provisions here (default: the pool's file system size)")
        String capacity;

        @Option(names = "--overcommit", paramLabel = "RATIO", defaultValue = "2.0",
                description = "Thin provisioning: provision up to capacity x RATIO (default: ${DEFAULT-VALUE})")
        double overcommit;
        @Option(names = "--replication-listen", paramLabel = "HOST:PORT",
                description = "Where the replica server listens for engines on other nodes (default: the API's host and port + 20, "
                        + "7420 with the default API address; with API port 0, a free port kept across restarts)")
        String replicationListen;
        @Option(names = "--resync-rate", paramLabel = "SIZE", defaultValue = "200MiB",
                description = "Cap on resync/rebuild copy rate per volume, bytes per second (0: unlimited; default ${DEFAULT-VALUE})")
        String resyncRate;
        @Option(names = "--background-bandwidth", paramLabel = "SIZE", defaultValue = "200MiB",
                description = "Node-wide budget for background copying (resync, rebuild, backup), bytes per second; "
                        + "a quarter of it while clients do I/O on this node (0 or unlimited: no node-wide cap; "
                        + "default ${DEFAULT-VALUE}; docs/qos.md)")
        String backgroundBandwidth;
        @Option(names = "--scrub-rate", paramLabel = "SIZE", defaultValue = "4MiB",
                description = "Background scrub rate per attached volume, bytes per second (0: off; default ${DEFAULT-VALUE})")
        String scrubRate;
        @Option(names = "--docker-plugin", paramLabel = "SOCKET", arity = "0..1",
                fallbackValue = "/run/docker/plugins/ballast.sock",
                description = "Serve the Docker volume plugin on SOCKET (default /run/docker/plugins/ballast.sock; off unless given)")
        Path dockerPluginSocket;

        @Option(names = "--csi-endpoint", paramLabel = "unix:///PATH",
                description = "Serve the CSI Identity, Controller and Node services on this unix socket (Kubernetes, Nomad; off unless given)")
        String csiEndpoint;

        @Option(names = "--csi-path-root", paramLabel = "DIR", defaultValue = "/var/lib/kubelet",
                description = "CSI staging and target paths must lie under DIR (default: ${DEFAULT-VALUE}; Nomad: the plugin's mount_dir)")
        Path csiPathRoot;

        @Option(names = "--encryption-key-file", paramLabel = "FILE",
                description = "The cluster key (32 random bytes, mode 0600) that unwraps encrypted volumes' data keys "
                        + "(default: $BALLAST_ENCRYPTION_PASSPHRASE, else none: encrypted volumes are refused here)")
        Path encryptionKeyFile;

        @Option(names = "--metrics-listen", paramLabel = "HOST:PORT",
                description = "Also serve GET /metrics here without a token (for Prometheus; off unless given: the API's /metrics needs a viewer token)")
        String metricsListen;

        /** --token-file, else --token (with a warning: ps shows it), else $BALLAST_CLUSTER_TOKEN. */
        private String clusterToken() {
            if (tokenFile != null && token != null) {
                throw BallastException.invalid("give the cluster token once: --token-file or --token, not both");
            }
            if (tokenFile != null) {
                try {
                    String t = java.nio.file.Files.readString(tokenFile).strip();
                    if (t.isEmpty()) {
                        throw BallastException.invalid("--token-file " + tokenFile + " is empty");
                    }
                    return t;
                } catch (java.io.IOException e) {
                    throw BallastException.invalid("cannot read --token-file " + tokenFile + ": " + e.getMessage());
                }
            }
            if (token != null) {
                parent.cli.err.println("warning: --token is visible to every user of this host in `ps`; use --token-file PATH"
                        + " or the environment variable BALLAST_CLUSTER_TOKEN instead");
                parent.cli.err.flush();
                return token;
            }
            return parent.cli.env.get("BALLAST_CLUSTER_TOKEN");
        }

        /** TLS from --nbd-tls-dir, loaded now so bad files stop the start with the reason; null without it. */
        private io.ballast.frontend.nbd.NbdTls nbdTls() {
            if (nbdTlsDir == null) {
                return null;
            }
            try {
                io.ballast.frontend.nbd.NbdTls.Policy policy = switch (nbdTlsPolicy) {
                    case "required" -> io.ballast.frontend.nbd.NbdTls.Policy.REQUIRED;
                    case "optional" -> io.ballast.frontend.nbd.NbdTls.Policy.OPTIONAL;
                    default -> throw BallastException.invalid("--nbd-tls-policy must be required or optional, got '"
                            + nbdTlsPolicy + "'");
                };
                if (policy == io.ballast.frontend.nbd.NbdTls.Policy.OPTIONAL) {
                    parent.cli.err.println("warning: --nbd-tls-policy optional serves NBD over TCP without TLS to any client"
                            + " that does not ask for it: anyone who can reach the port can read and write every attached volume");
                    parent.cli.err.flush();
                }
                return new io.ballast.frontend.nbd.NbdTls(io.ballast.frontend.nbd.NbdTlsDirectory.open(nbdTlsDir), policy);
            } catch (java.io.IOException | java.security.GeneralSecurityException e) {
                String why = e instanceof java.nio.file.NoSuchFileException ? "missing " + e.getMessage() : e.getMessage();
                throw BallastException.invalid("--nbd-tls-dir " + nbdTlsDir + ": " + why + " (expected "
                        + io.ballast.frontend.nbd.NbdTlsDirectory.CA_CERT + ", " + io.ballast.frontend.nbd.NbdTlsDirectory.SERVER_CERT
                        + " and " + io.ballast.frontend.nbd.NbdTlsDirectory.SERVER_KEY + ", PEM)");
            }
        }

        /** 30d, 12h, 15m, 90s, or an ISO-8601 duration (PT1H). */
        static java.time.Duration parseDuration(String text) {
            String t = text.strip().toLowerCase(java.util.Locale.ROOT);
            try {
                if (t.startsWith("p")) {
                    return java.time.Duration.parse(text.strip());
                }
                long n = Long.parseLong(t.substring(0, t.length() - 1));
                java.time.Duration d = switch (t.charAt(t.length() - 1)) {
                    case 'd' -> java.time.Duration.ofDays(n);
                    case 'h' -> java.time.Duration.ofHours(n);
                    case 'm' -> java.time.Duration.ofMinutes(n);
                    case 's' -> java.time.Duration.ofSeconds(n);
                    default -> throw new IllegalArgumentException();
                };
                if (d.toSeconds() < 10) {
                    throw BallastException.invalid("--cert-lifetime must be at least 10s, got " + text);
                }
                return d;
            } catch (RuntimeException e) {
                if (e instanceof BallastException b) {
                    throw b;
                }
                throw BallastException.invalid("invalid duration '" + text + "': use e.g. 30d, 12h, 15m or 90s");
            }
        }

        @Override
        public Integer call() throws Exception {
            InetSocketAddress api = NodeConfig.parseAddress(apiListen);
            InetSocketAddress nbd = "off".equals(nbdListen) ? null : NodeConfig.parseAddress(nbdListen);
            var labelMap = io.ballast.cluster.Labels.parse(labels);
            String tok = clusterToken();
            long cap = capacity == null ? 0 : io.ballast.common.Sizes.parse(capacity);
            if (!(overcommit >= 1.0 && overcommit <= 100)) {
                throw BallastException.invalid("--overcommit must be between 1.0 and 100, got " + overcommit);
            }
            ClusterConfig cluster = new ClusterConfig(nodeId, join, tok == null || tok.isBlank() ? null : tok, labelMap,
                    raftListen, cap, overcommit, null);
            InetSocketAddress repl = replicationListen == null ? null : NodeConfig.parseAddress(replicationListen);
            io.ballast.replication.EngineConfig engine = io.ballast.replication.EngineConfig.defaults()
                    .withResyncBytesPerSec(io.ballast.common.Sizes.parse(resyncRate))
                    .withScrubBytesPerSec(io.ballast.common.Sizes.parse(scrubRate));
            if (insecure && (caCert != null || caKey != null)) {
                throw BallastException.invalid("--insecure runs without TLS; --ca-cert/--ca-key make no sense with it");
            }
            io.ballast.security.TlsSettings tls;
            try {
                tls = new io.ballast.security.TlsSettings(insecure, caCert, caKey, parseDuration(certLifetime));
            } catch (IllegalArgumentException e) {
                throw BallastException.invalid(e.getMessage());
            }
            NodeConfig config = new NodeConfig(dataDir, api, nbd, nbdSocket, cluster, repl, engine, nbdTls(),
                    encryptionKeyFile == null ? null : encryptionKeyFile.toAbsolutePath(), tls)
                    .withBackgroundBytesPerSec(io.ballast.qos.QosValues.parseBandwidth(backgroundBandwidth))
                    .withPools(pools.stream().map(io.ballast.storage.PoolDirectory::parse).toList());
            // a bad key file is a usage error now, not a daemon that starts and refuses volumes later
            io.ballast.keys.ClusterKey.of(config.encryptionKeyFile(), java.util.Map.of());
            if (insecure) {
                parent.cli.err.println("WARNING: INSECURE node: no TLS on the API, Raft and replication ports; anyone who can"
                        + " reach them can read and change every volume. For benchmarks on a trusted network only.");
            }
            InetSocketAddress metricsAddress = metricsListen == null ? null : NodeConfig.parseAddress(metricsListen);
            io.ballast.common.OwnerOnly.restrictProcessUmask(); // before the log file exists
            io.ballast.common.OwnerOnly.createDirectories(config.dataDir());
            io.ballast.common.OwnerOnly.restrictDirectory(config.dataDir());
            LogSetup.daemon(config.logFile());
            NodeDaemon daemon = new NodeDaemon(config, new DefaultComponents(), new ProcessCommandRunner());
            try {
                daemon.start();
            } catch (java.net.BindException e) {
                throw BallastException.io("cannot listen on " + apiListen + ", " + nbdListen + " or " + raftListen + ": "
                        + e.getMessage() + "; pick other addresses with --api-listen/--nbd-listen/--raft-listen", e);
            } catch (java.io.IOException e) {
                throw BallastException.io("node start failed: " + e.getMessage(), e);
            }
            io.ballast.api.rest.MetricsListener metrics = null;
            if (metricsAddress != null) {
                try {
                    metrics = io.ballast.api.rest.MetricsListener.start(metricsAddress);
                } catch (java.io.IOException e) {
                    daemon.close();
                    throw BallastException.io("cannot serve metrics on " + metricsListen + ": " + e.getMessage(), e);
                }
            }
            io.ballast.api.rest.MetricsListener metricsListener = metrics;
            io.ballast.integrations.docker.DockerPlugin docker = null;
            if (dockerPluginSocket != null) {
                try {
                    docker = io.ballast.integrations.docker.DockerPlugin.start(daemon.volumes(), daemon.member().nodeId(),
                            dockerPluginSocket,
                            config.dataDir().resolve("docker").resolve("mounts"));
                } catch (java.io.IOException e) {
                    daemon.close();
                    throw BallastException.io("docker plugin start failed on " + dockerPluginSocket + ": " + e.getMessage(), e);
                }
            }
            io.ballast.integrations.docker.DockerPlugin dockerPlugin = docker;
            io.ballast.integrations.csi.CsiServer csi = null;
            if (csiEndpoint != null) {
                Path socket = io.ballast.integrations.csi.CsiServer.socketPath(csiEndpoint);
                try {
                    var runner = new ProcessCommandRunner();
                    csi = io.ballast.integrations.csi.CsiServer.start(socket,
                            new io.ballast.integrations.csi.BallastCsiCluster((io.ballast.control.ClusterVolumeService) daemon.volumes(),
                                    daemon.member(), config.nbdSocket()),
                            runner, new io.ballast.attach.AttachAgent(runner, config.dataDir().resolve("attach"),
                                    java.time.Duration.ofSeconds(60)),
                            csiPathRoot, config.dataDir().resolve("csi"),
                            () -> daemon.state() == io.ballast.node.NodeState.RUNNING);
                } catch (java.io.IOException e) {
                    if (dockerPlugin != null) {
                        dockerPlugin.close();
                    }
                    daemon.close();
                    throw BallastException.io("CSI endpoint start failed on " + socket + ": " + e.getMessage(), e);
                }
            }
            io.ballast.integrations.csi.CsiServer csiServer = csi;
            // SIGTERM/SIGINT run shutdown hooks: stop cleanly (plugins first, then NBD closed, pool flushed and closed).
            Runtime.getRuntime().addShutdownHook(new Thread(() -> {
                if (csiServer != null) {
                    csiServer.close();
                }
                if (dockerPlugin != null) {
                    dockerPlugin.close();
                }
                if (metricsListener != null) {
                    metricsListener.close();
                }
                daemon.close();
            }, "ballast-shutdown"));
            parent.cli.out.println("Ballast node " + daemon.member().nodeId() + " running: API " + daemon.apiUrl()
                    + (metricsListener == null ? "" : ", metrics (no token) http://" + metricsListener.address().getHostString() + ":"
                            + metricsListener.address().getPort() + "/metrics")
                    + ", Raft " + daemon.member().identity().raftAddress() + ", data " + config.dataDir());
            if (join == null && tok == null) {
                parent.cli.out.println("Join token (for --join on other nodes; SECRET.CA_SHA256): "
                        + config.dataDir().resolve("cluster-token"));
            }
            if (daemon.tls() != null) {
                parent.cli.out.println("Cluster CA sha256 " + daemon.tls().caFingerprint() + " (" + daemon.tls().dir().caCert()
                        + "; clients: --ca-file or $BALLAST_CA_FILE)");
            }
            parent.cli.out.flush();
            new CountDownLatch(1).await(); // until the JVM exits
            return ExitCodes.OK;
        }
    }
}
