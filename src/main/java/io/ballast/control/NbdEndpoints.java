package io.ballast.control;

import java.net.InetSocketAddress;
import java.nio.file.Path;

/**
 * Where this node's NBD frontend listens, and how busy each export is. Implemented by the node
 * wiring around the NBD server; the control plane only needs addresses and connection counts.
 */
public interface NbdEndpoints {

    /** The TCP address the NBD server listens on, or null when TCP is disabled. */
    InetSocketAddress tcpAddress();

    /** The unix socket the NBD server listens on, or null when disabled. */
    Path unixSocket();

    /** Number of NBD connections currently open to the export. */
    int openConnections(String exportName);

    /**
     * Ends the export's connections gracefully (in-flight requests answered, then closed) and refuses
     * new ones until {@link #reopen}: before its engine stops on a detach. Answers how many it ended.
     */
    default int disconnect(String exportName) {
        return 0;
    }

    /** Accepts connections to the export again. */
    default void reopen(String exportName) {}

    /** True when TCP clients connect with TLS (NBD_OPT_STARTTLS): TCP URIs are then nbds://. */
    default boolean tcpTls() {
        return false;
    }

    /** The URI scheme for TCP clients of this node: {@code nbds} with TLS, else {@code nbd}. */
    default String tcpScheme() {
        return tcpTls() ? "nbds" : "nbd";
    }

    default String tcpUri(String volume) {
        InetSocketAddress a = tcpAddress();
        if (a == null) {
            return null;
        }
        String host = a.getAddress() != null ? a.getAddress().getHostAddress() : a.getHostString();
        if (host.contains(":")) {
            host = "[" + host + "]";
        }
        return tcpScheme() + "://" + host + ":" + a.getPort() + "/" + volume;
    }

    default String unixUri(String volume) {
        Path s = unixSocket();
        return s == null ? null : "nbd+unix:///" + volume + "?socket=" + s.toAbsolutePath();
    }
}
