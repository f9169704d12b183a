package io.ballast.node;

import io.ballast.common.BallastException;
import java.net.InetSocketAddress;
import java.nio.file.Path;

/**
 * How to start a node. Listeners default to loopback: exposing storage on the network is a choice
 * the operator makes explicitly. Port 0 picks a free port; the actual addresses go to node.json.
 *
 * @param nbdListen null disables NBD over TCP
 * @param nbdSocket null means DATA/nbd.sock
 * @param replicationListen where the replica server listens for engines on other nodes; null means
 *     the API's host on the API port + 20 (see {@link #defaultReplicationListen}; the address is
 *     registered in the cluster metadata)
 * @param engine tuning of the engines on this node (timeouts, resync and scrub rates); null: defaults
 * @param nbdTls TLS required on the NBD TCP listener (client certificates), null for plaintext; the
 *     unix socket stays plaintext and root-only
 * @param encryptionKeyFile the cluster key-encryption key (32 random bytes, mode 0600) that unwraps
 *     encrypted volumes' data keys; null: $BALLAST_ENCRYPTION_PASSPHRASE, else none (encrypted
 *     volumes are refused on this node, the others are served)
 * @param tls how the node secures its ports; null means insecure (plaintext), the embedded/test
 *     default. `ballast node start` and `ballast up` pass TLS unless told --insecure.
 * @param backgroundBytesPerSec the node's budget for background copying (resync, rebuild, backup),
 *     yielding to client I/O (docs/qos.md); 0: unlimited (each copier's own cap still applies)
 * @param pools pool directories given with {@code --pool} (added to those DATA/pools.json records); empty:
 *     the recorded ones, or DATA/pool for a new node (docs/node.md, "Pools")
 */
public record NodeConfig(Path dataDir, InetSocketAddress apiListen, InetSocketAddress nbdListen, Path nbdSocket,
        io.ballast.cluster.ClusterConfig cluster, InetSocketAddress replicationListen,
        io.ballast.replication.EngineConfig engine, io.ballast.frontend.nbd.NbdTls nbdTls, Path encryptionKeyFile,
        io.ballast.security.TlsSettings tls, long backgroundBytesPerSec, java.util.List<io.ballast.storage.PoolDirectory> pools) {
    public static final String DEFAULT_API_LISTEN = "127.0.0.1:7400";
    public static final String DEFAULT_NBD_LISTEN = "127.0.0.1:10809";

    public NodeConfig {
        dataDir = dataDir.toAbsolutePath().normalize();
        if (nbdSocket == null) {
            nbdSocket = dataDir.resolve("nbd.sock");
        }
        if (cluster == null) {
            cluster = io.ballast.cluster.ClusterConfig.standalone("127.0.0.1:0");
        }
        if (replicationListen == null) {
            replicationListen = defaultReplicationListen(apiListen);
        }
        if (engine == null) {
            engine = DEFAULT_ENGINE;
        }
        if (tls == null) {
            tls = io.ballast.security.TlsSettings.insecureMode();
        }
        if (backgroundBytesPerSec < 0) {
            throw BallastException.invalid("background bandwidth must be >= 0 (0: unlimited), got " + backgroundBytesPerSec);
        }
        pools = pools == null ? java.util.List.of() : java.util.List.copyOf(pools);
    }

    /** Without --pool directories. */
    public NodeConfig(Path dataDir, InetSocketAddress apiListen, InetSocketAddress nbdListen, Path nbdSocket,
            io.ballast.cluster.ClusterConfig cluster, InetSocketAddress replicationListen,
            io.ballast.replication.EngineConfig engine, io.ballast.frontend.nbd.NbdTls nbdTls, Path encryptionKeyFile,
            io.ballast.security.TlsSettings tls, long backgroundBytesPerSec) {
        this(dataDir, apiListen, nbdListen, nbdSocket, cluster, replicationListen, engine, nbdTls, encryptionKeyFile, tls,
                backgroundBytesPerSec, java.util.List.of());
    }

    /** With these pool directories (--pool) besides those the data directory records. */
    public NodeConfig withPools(java.util.List<io.ballast.storage.PoolDirectory> dirs) {
        return new NodeConfig(dataDir, apiListen, nbdListen, nbdSocket, cluster, replicationListen, engine, nbdTls,
                encryptionKeyFile, tls, backgroundBytesPerSec, dirs);
    }

    /** With the default background budget ({@link io.ballast.qos.BackgroundBudget#DEFAULT_BYTES_PER_SEC}). */
    public NodeConfig(Path dataDir, InetSocketAddress apiListen, InetSocketAddress nbdListen, Path nbdSocket,
            io.ballast.cluster.ClusterConfig cluster, InetSocketAddress replicationListen,
            io.ballast.replication.EngineConfig engine, io.ballast.frontend.nbd.NbdTls nbdTls, Path encryptionKeyFile,
            io.ballast.security.TlsSettings tls) {
        this(dataDir, apiListen, nbdListen, nbdSocket, cluster, replicationListen, engine, nbdTls, encryptionKeyFile, tls,
                io.ballast.qos.BackgroundBudget.DEFAULT_BYTES_PER_SEC);
    }

    public NodeConfig withBackgroundBytesPerSec(long bytesPerSec) {
        return new NodeConfig(dataDir, apiListen, nbdListen, nbdSocket, cluster, replicationListen, engine, nbdTls,
                encryptionKeyFile, tls, bytesPerSec, pools);
    }

    /** With these TLS settings and neither NBD TLS nor a cluster key file. */
    public NodeConfig(Path dataDir, InetSocketAddress apiListen, InetSocketAddress nbdListen, Path nbdSocket,
            io.ballast.cluster.ClusterConfig cluster, InetSocketAddress replicationListen,
            io.ballast.replication.EngineConfig engine, io.ballast.security.TlsSettings tls) {
        this(dataDir, apiListen, nbdListen, nbdSocket, cluster, replicationListen, engine, null, null, tls);
    }

    public NodeConfig withTls(io.ballast.security.TlsSettings settings) {
        return new NodeConfig(dataDir, apiListen, nbdListen, nbdSocket, cluster, replicationListen, engine, nbdTls,
                encryptionKeyFile, settings, backgroundBytesPerSec, pools);
    }

    /** The replication port sits {@value #REPLICATION_PORT_OFFSET} above the API port: 7420 by default. */
    public static final int REPLICATION_PORT_OFFSET = 20;

    /**
     * The API's host, on the API port + {@value #REPLICATION_PORT_OFFSET}: a fixed port a firewall can
     * be opened for (7420 with the default API port), and distinct per node of a local cluster, whose
     * API ports are consecutive. An API on port 0 (tests) gets port 0 here too: a free port, kept
     * across restarts (node.ReplicationEngineHost).
     */
    static InetSocketAddress defaultReplicationListen(InetSocketAddress apiListen) {
        if (apiListen == null) {
            return new InetSocketAddress("127.0.0.1", 0);
        }
        int port = apiListen.getPort() == 0 ? 0 : apiListen.getPort() + REPLICATION_PORT_OFFSET;
        if (port > 65535) {
            throw BallastException.invalid("API port " + apiListen.getPort() + " leaves no replication port (API port + "
                    + REPLICATION_PORT_OFFSET + "); give --replication-listen HOST:PORT");
        }
        return new InetSocketAddress(apiListen.getHostString(), port);
    }

    /** Engine defaults for a node: a slow background scrub (4 MiB/s) on top of the engine's own defaults. */
    public static final io.ballast.replication.EngineConfig DEFAULT_ENGINE =
            io.ballast.replication.EngineConfig.defaults().withScrubBytesPerSec(4L << 20);

    public NodeConfig(Path dataDir, InetSocketAddress apiListen, InetSocketAddress nbdListen, Path nbdSocket,
            io.ballast.cluster.ClusterConfig cluster, InetSocketAddress replicationListen,
            io.ballast.replication.EngineConfig engine) {
        this(dataDir, apiListen, nbdListen, nbdSocket, cluster, replicationListen, engine, null, null, null);
    }

    /** This configuration with NBD TCP connections under {@code tls}. */
    public NodeConfig withNbdTls(io.ballast.frontend.nbd.NbdTls tls) {
        return new NodeConfig(dataDir, apiListen, nbdListen, nbdSocket, cluster, replicationListen, engine, tls, encryptionKeyFile, this.tls,
                backgroundBytesPerSec, pools);
    }

    public NodeConfig withEncryptionKeyFile(Path keyFile) {
        return new NodeConfig(dataDir, apiListen, nbdListen, nbdSocket, cluster, replicationListen, engine, nbdTls, keyFile, tls,
                backgroundBytesPerSec, pools);
    }

    public NodeConfig(Path dataDir, InetSocketAddress apiListen, InetSocketAddress nbdListen, Path nbdSocket,
            io.ballast.cluster.ClusterConfig cluster) {
        this(dataDir, apiListen, nbdListen, nbdSocket, cluster, null, null, null);
    }

    /** A node that bootstraps its own cluster, Raft on a free loopback port (tests, embedded use). */
    public NodeConfig(Path dataDir, InetSocketAddress apiListen, InetSocketAddress nbdListen, Path nbdSocket) {
        this(dataDir, apiListen, nbdListen, nbdSocket, null);
    }

    public Path poolDir() {
        return dataDir.resolve("pool");
    }

    public Path nodeJson() {
        return dataDir.resolve("node.json");
    }

    public Path pidFile() {
        return dataDir.resolve("ballast.pid");
    }

    public Path logFile() {
        return dataDir.resolve("ballast.log");
    }

    /** Parses "host:port" (or "[v6]:port"); INVALID_ARGUMENT with the accepted form otherwise. */
    public static InetSocketAddress parseAddress(String text) {
        int colon = text == null ? -1 : text.lastIndexOf(':');
        if (colon <= 0) {
            throw BallastException.invalid("invalid address '" + text + "': use HOST:PORT, e.g. 127.0.0.1:7400");
        }
        String host = text.substring(0, colon).replace("[", "").replace("]", "");
        int port;
        try {
            port = Integer.parseInt(text.substring(colon + 1));
        } catch (NumberFormatException e) {
            throw BallastException.invalid("invalid port in '" + text + "': use HOST:PORT, e.g. 127.0.0.1:7400");
        }
        if (port < 0 || port > 65535) {
            throw BallastException.invalid("port " + port + " out of range 0..65535");
        }
        return new InetSocketAddress(host, port);
    }
}
