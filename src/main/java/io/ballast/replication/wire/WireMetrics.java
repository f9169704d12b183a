package io.ballast.replication.wire;

import io.prometheus.metrics.core.datapoints.CounterDataPoint;
import io.prometheus.metrics.core.metrics.Counter;
import io.prometheus.metrics.core.metrics.Gauge;

/**
 * Replication transport metrics in the default Prometheus registry. Static because the registry
 * refuses a second registration of a name, and tests run several servers in one JVM.
 */
final class WireMetrics {
    private WireMetrics() {}

    static final Counter SERVER_REQUESTS = Counter.builder()
            .name("ballast_replication_server_requests_total")
            .help("Replica requests answered by this node's replication server")
            .register();

    static final Counter SERVER_RECEIVED_BYTES = Counter.builder()
            .name("ballast_replication_server_received_bytes_total")
            .help("Bytes received on the replication port")
            .register();

    static final Counter SERVER_SENT_BYTES = Counter.builder()
            .name("ballast_replication_server_sent_bytes_total")
            .help("Bytes sent from the replication port")
            .register();

    static final Counter SERVER_REFUSED_CONNECTIONS = Counter.builder()
            .name("ballast_replication_server_refused_connections_total")
            .help("Replication connections refused or closed for bad input, by reason "
                    + "(credentials, membership, protocol)")
            .labelNames("reason")
            .register();

    static final Counter SERVER_FENCED_REQUESTS = Counter.builder()
            .name("ballast_replication_server_fenced_requests_total")
            .help("Replica requests refused because their epoch is below the volume's epoch floor")
            .register();

    static final Gauge SERVER_CONNECTIONS_OPEN = Gauge.builder()
            .name("ballast_replication_server_connections_open")
            .help("Replication connections currently open on this node's server")
            .register();

    static final Counter CLIENT_SENT_BYTES = Counter.builder()
            .name("ballast_replication_client_sent_bytes_total")
            .help("Bytes sent by engines to replicas over TCP")
            .register();

    static final Counter CLIENT_RECEIVED_BYTES = Counter.builder()
            .name("ballast_replication_client_received_bytes_total")
            .help("Bytes received by engines from replicas over TCP")
            .register();

    static final Counter CLIENT_UNAVAILABLE = Counter.builder()
            .name("ballast_replication_client_unavailable_total")
            .help("Requests answered UNAVAILABLE by the transport (connection lost or node unreachable)")
            .register();

    static final Counter CLIENT_CONNECTIONS = Counter.builder()
            .name("ballast_replication_client_connections_total")
            .help("Connections opened by engines to replicas, by result (ok, failed)")
            .labelNames("result")
            .register();

    static final CounterDataPoint REFUSED_CREDENTIALS = SERVER_REFUSED_CONNECTIONS.labelValues("credentials");
    static final CounterDataPoint REFUSED_MEMBERSHIP = SERVER_REFUSED_CONNECTIONS.labelValues("membership");
    static final CounterDataPoint REFUSED_PROTOCOL = SERVER_REFUSED_CONNECTIONS.labelValues("protocol");
}
