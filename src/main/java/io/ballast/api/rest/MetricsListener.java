package io.ballast.api.rest;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import io.ballast.common.HttpErrors;
import io.ballast.metrics.Metrics;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The opt-in listener that serves {@code GET /metrics} without a token ({@code node start
 * --metrics-listen ADDR}), for a Prometheus that holds no API token. It serves nothing else; the API's
 * own {@code /metrics} keeps needing a viewer token.
 */
public final class MetricsListener implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(MetricsListener.class);
    private final HttpServer server;
    private final ExecutorService executor = Executors.newVirtualThreadPerTaskExecutor();

    private MetricsListener(InetSocketAddress listen) throws IOException {
        server = HttpServer.create(listen, 16);
        server.setExecutor(executor);
        server.createContext("/", this::handle);
    }

    public static MetricsListener start(InetSocketAddress listen) throws IOException {
        MetricsListener m = new MetricsListener(listen);
        m.server.start();
        log.atInfo().addKeyValue("address", m.address().toString()).log("metrics listener (no authentication) serving /metrics");
        return m;
    }

    public InetSocketAddress address() {
        return server.getAddress();
    }

    private void handle(HttpExchange ex) throws IOException {
        try (ex) {
            if (!ex.getRequestURI().getRawPath().equals("/metrics")) {
                send(ex, 404, "application/json", HttpErrors.of(404, "NOT_FOUND", "this listener serves only /metrics").body());
                return;
            }
            if (!ex.getRequestMethod().equals("GET")) {
                ex.getResponseHeaders().set("Allow", "GET");
                send(ex, 405, "application/json", HttpErrors.of(405, "METHOD_NOT_ALLOWED", "only GET /metrics").body());
                return;
            }
            ByteArrayOutputStream buf = new ByteArrayOutputStream();
            Metrics.write(buf);
            send(ex, 200, Metrics.contentType(), buf.toByteArray());
        }
    }

    private static void send(HttpExchange ex, int status, String contentType, byte[] body) throws IOException {
        ex.getResponseHeaders().set("Content-Type", contentType);
        ex.sendResponseHeaders(status, body.length);
        try (OutputStream os = ex.getResponseBody()) {
            os.write(body);
        }
    }

    @Override
    public void close() {
        server.stop(0);
        executor.close();
    }
}
