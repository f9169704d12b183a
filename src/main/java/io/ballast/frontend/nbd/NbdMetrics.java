package io.ballast.frontend.nbd;

import io.prometheus.metrics.core.datapoints.CounterDataPoint;
import io.prometheus.metrics.core.datapoints.DistributionDataPoint;
import io.prometheus.metrics.core.metrics.Counter;
import io.prometheus.metrics.core.metrics.Gauge;
import io.prometheus.metrics.core.metrics.Histogram;

/**
 * NBD metrics in the default Prometheus registry. Static because the registry refuses a second
 * registration of the same name, and several servers may live in one JVM (tests).
 */
final class NbdMetrics {
    private NbdMetrics() {}

    static final Gauge CONNECTIONS_OPEN = Gauge.builder()
            .name("ballast_nbd_connections_open")
            .help("NBD connections currently open (handshake or transmission)")
            .register();

    static final Counter REQUESTS = Counter.builder()
            .name("ballast_nbd_requests_total")
            .help("NBD requests answered, by command and result (ok or errno name)")
            .labelNames("command", "result")
            .register();

    static final Counter READ_BYTES = Counter.builder()
            .name("ballast_nbd_read_bytes_total")
            .help("Bytes returned to NBD clients by READ")
            .register();

    static final Counter WRITTEN_BYTES = Counter.builder()
            .name("ballast_nbd_written_bytes_total")
            .help("Bytes accepted from NBD clients by WRITE")
            .register();

    static final Counter TLS_HANDSHAKES = Counter.builder()
            .name("ballast_nbd_tls_handshakes_total")
            .help("TLS handshakes after NBD_OPT_STARTTLS, by result (ok, failed: no, untrusted or expired client certificate, ...)")
            .labelNames("result")
            .register();

    static final Counter TLS_REQUIRED_REFUSALS = Counter.builder()
            .name("ballast_nbd_tls_required_refusals_total")
            .help("Options refused before STARTTLS because TLS is required (NBD_REP_ERR_TLS_REQD, or a close for EXPORT_NAME)")
            .register();

    static final Histogram LATENCY = Histogram.builder()
            .name("ballast_nbd_request_duration_seconds")
            .help("NBD request latency from decoded header to reply sent")
            .labelNames("command")
            .classicOnly()
            .classicUpperBounds(0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                    0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)
            .register();

    // Data points for the hot path, resolved once so a request does no label lookup.
    private static final int COMMANDS = 8;
    private static final CounterDataPoint[] OK = new CounterDataPoint[COMMANDS];
    private static final DistributionDataPoint[] LATENCY_BY_COMMAND = new DistributionDataPoint[COMMANDS];

    static {
        for (int type = 0; type < COMMANDS; type++) {
            OK[type] = REQUESTS.labelValues(NbdProtocol.commandName(type), "ok");
            LATENCY_BY_COMMAND[type] = LATENCY.labelValues(NbdProtocol.commandName(type));
        }
    }

    /** Loads the class, so /metrics lists the NBD series (at zero) before the first client connects. */
    static void register() {}

    static void request(int commandType, int errno, long elapsedNs) {
        int idx = commandType >= 0 && commandType < COMMANDS ? commandType : -1;
        if (errno == 0 && idx >= 0) {
            OK[idx].inc();
        } else {
            REQUESTS.labelValues(NbdProtocol.commandName(commandType), NbdErrors.resultLabel(errno)).inc();
        }
        if (idx >= 0) {
            LATENCY_BY_COMMAND[idx].observe(elapsedNs / 1e9);
        }
    }
}
