package io.ballast.api.rest;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.exc.MismatchedInputException;
import com.fasterxml.jackson.databind.exc.UnrecognizedPropertyException;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import io.ballast.auth.AuthApi;
import io.ballast.auth.Principal;
import io.ballast.cluster.PeerCalls;
import io.ballast.common.BallastException;
import io.ballast.common.HttpErrors;
import io.ballast.common.Json;
import io.ballast.common.Sizes;
import io.ballast.control.VolumeService;
import io.ballast.metrics.Metrics;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import io.ballast.auth.Unauthenticated;

/**
 * The REST API (see docs/api.md) on the JDK's HTTP server, one virtual thread per request, so a slow
 * or broken client ties up only its own thread. Routing is a small hand-written table: the API is
 * small and every route's method check, error and metric label stay visible in one place.
 */
public final class RestServer implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(RestServer.class);
    public static final int MAX_BODY_BYTES = 1024 * 1024;

    static final ObjectMapper JSON = strict(Json.newMapper()
            .enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .enable(com.fasterxml.jackson.core.JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
            .disable(SerializationFeature.FAIL_ON_EMPTY_BEANS));

    /** A number or boolean is not a string: {@code {"name": 123}} is refused, not read as "123". */
    private static ObjectMapper strict(ObjectMapper m) {
        var textual = m.coercionConfigFor(com.fasterxml.jackson.databind.type.LogicalType.Textual);
        for (var shape : List.of(com.fasterxml.jackson.databind.cfg.CoercionInputShape.Integer,
                com.fasterxml.jackson.databind.cfg.CoercionInputShape.Float,
                com.fasterxml.jackson.databind.cfg.CoercionInputShape.Boolean)) {
            textual.setCoercion(shape, com.fasterxml.jackson.databind.cfg.CoercionAction.Fail);
        }
        return m;
    }

    static {
        // The JDK server never times a request out by default: a client that sends half a request
        // holds its connection for good. Seconds; read once, when the first server is made.
        if (System.getProperty("sun.net.httpserver.maxReqTime") == null) {
            System.setProperty("sun.net.httpserver.maxReqTime", "30");
        }
    }

    private final VolumeService volumes;
    private final NodeStatusSource node;
    private final ClusterApi cluster;
    /** Null: a node without backups (the backup routes answer 404). */
    private volatile io.ballast.backup.BackupService backups;
    /** Null: a node without snapshot schedules (their routes answer 404). */
    private volatile io.ballast.control.SnapshotScheduler schedules;
    /** Calls to other members: over this node's TLS, with its node credential. */
    private final PeerCalls peers;
    /** Rates of volumes attached elsewhere, asked from their engines' nodes. */
    private final RemoteIoRates remoteIo;
    private final HttpServer server;
    private final io.ballast.security.NodeTls tls;
    private final ExecutorService executor = Executors.newVirtualThreadPerTaskExecutor();
    /** The local unix socket front (null: none). */
    private volatile UnixApiListener local;
    /** The JDK server's defaults (idle interval, maxReqTime above), kept on the socket. */
    static final long LOCAL_IDLE_TIMEOUT_MS = 30_000;
    static final long LOCAL_REQUEST_TIMEOUT_MS = 30_000;

    public RestServer(InetSocketAddress listen, VolumeService volumes, NodeStatusSource node) throws IOException {
        this(listen, volumes, node, null);
    }

    static {
        // The JDK server writes a response's headers and its body as two segments. With Nagle on, the
        // body waits for the client to acknowledge the headers, and a keep-alive client delays that ACK
        // (up to 40 ms on Linux). Read once, when the first server is created.
        System.setProperty("sun.net.httpserver.nodelay", "true");
    }

    /** Who may call: every request but the open ones (RouteAccess) is authenticated here first. */
    private volatile Authenticator authenticator = Authenticator.DENY_ALL;
    /** Null: no token endpoints (404) and no audit trail. */
    private volatile AuthApi auth;
    /**
     * Who made the request being served, for the audit record after the answer. Not an exchange
     * attribute: the JDK server keeps those per context, shared by every request.
     */
    private static final class Caller {
        Principal principal;
    }

    /** Wrong join tokens per source address (429 with Retry-After past a few). */
    private final JoinThrottle joinThrottle = new JoinThrottle();

    private static long nowMs() {
        return System.nanoTime() / 1_000_000;
    }

    /** {@code cluster} null: a node without cluster endpoints. */
    public RestServer(InetSocketAddress listen, VolumeService volumes, NodeStatusSource node, ClusterApi cluster)
            throws IOException {
        this(listen, volumes, node, cluster, null);
    }

    /**
     * @param tls serve HTTPS with this node's identity (null: plain HTTP, --insecure). Client
     *     certificates are requested, not required (users come with bearer tokens); one that is sent
     *     must be from the cluster CA and not revoked, or the handshake fails. See {@link #peerNodeId}.
     */
    public RestServer(InetSocketAddress listen, VolumeService volumes, NodeStatusSource node, ClusterApi cluster,
            io.ballast.security.NodeTls tls) throws IOException {
        this.volumes = volumes;
        this.node = node;
        this.cluster = cluster;
        this.tls = tls;
        this.peers = new PeerCalls(tls, () -> {
            AuthApi a = auth;
            return a == null ? null : a.peerBearer();
        });
        this.remoteIo = new RemoteIoRates(peers, System::nanoTime);
        if (tls == null) {
            this.server = HttpServer.create(listen, 128);
        } else {
            com.sun.net.httpserver.HttpsServer https = com.sun.net.httpserver.HttpsServer.create(listen, 128);
            https.setHttpsConfigurator(new com.sun.net.httpserver.HttpsConfigurator(tls.context()) {
                @Override
                public void configure(com.sun.net.httpserver.HttpsParameters params) {
                    javax.net.ssl.SSLParameters p = getSSLContext().getDefaultSSLParameters();
                    p.setWantClientAuth(true);
                    params.setSSLParameters(p);
                }
            });
            this.server = https;
        }
        server.setExecutor(executor);
        server.createContext("/", this::handle);
    }

    /** Serves the backup endpoints through {@code service}. */
    public RestServer backups(io.ballast.backup.BackupService service) {
        this.backups = service;
        return this;
    }

    /** Serves the snapshot schedule endpoints through {@code scheduler}. */
    public RestServer schedules(io.ballast.control.SnapshotScheduler scheduler) {
        this.schedules = scheduler;
        return this;
    }

    /** Authenticates requests with {@code authenticator}; serves the token endpoints and records the audit trail through {@code api}. */
    public RestServer authentication(Authenticator authenticator, AuthApi api) {
        this.authenticator = authenticator;
        this.auth = api;
        return this;
    }

    /** The same API, without TLS, on a root-only unix socket at {@code path} (started with the server; null: none). */
    public RestServer localSocket(Path path) throws IOException {
        this.local = path == null ? null : new UnixApiListener(path, this::handle, UnixApiListener.PeerPolicy.ofThisProcess(),
                LOCAL_IDLE_TIMEOUT_MS, LOCAL_REQUEST_TIMEOUT_MS);
        return this;
    }

    /** The local API socket's path, or null when this server has none (not asked, or it could not be made). */
    public Path localSocketPath() {
        UnixApiListener l = local;
        return l == null ? null : l.path();
    }

    public void start() {
        server.start();
        log.atInfo().addKeyValue("address", address().toString()).log("REST API listening");
        UnixApiListener l = local;
        if (l != null) {
            try {
                l.start();
            } catch (IOException | RuntimeException e) {
                // the API is still served over HTTPS; the CLI falls back to it
                log.atWarn().addKeyValue("socket", l.path().toString()).log("no local API socket: {}", e.getMessage());
                local = null;
            }
        }
    }

    public InetSocketAddress address() {
        return server.getAddress();
    }

    public String url() {
        InetSocketAddress a = address();
        String host = a.getAddress().getHostAddress();
        return (tls == null ? "http://" : "https://") + (host.contains(":") ? "[" + host + "]" : host) + ":" + a.getPort();
    }

    @Override
    public void close() {
        UnixApiListener l = local;
        if (l != null) {
            l.close();
        }
        server.stop(0);
        executor.close();
    }

    /**
     * The node id of the caller's verified client certificate (another node, or a tool holding a node
     * certificate), or null: plain HTTP, or a client that sent none (a user; bearer tokens decide).
     * The handshake already refused certificates from another CA, expired or revoked ones.
     */
    public static String peerNodeId(HttpExchange ex) {
        return ex instanceof com.sun.net.httpserver.HttpsExchange hx ? io.ballast.security.NodeTls.peerNodeId(hx.getSSLSession()) : null;
    }

    /** The caller's address, or 429 with Retry-After while it is throttled for wrong cluster tokens ({@code what}: joins...). */
    private java.net.InetAddress throttled(HttpExchange ex, String what) {
        java.net.InetAddress from = ex.getRemoteAddress().getAddress();
        long waitMs = joinThrottle.retryAfterMs(from, nowMs());
        if (waitMs > 0) {
            long seconds = (waitMs + 999) / 1000;
            ex.getResponseHeaders().set("Retry-After", Long.toString(seconds));
            throw new HttpFailure(429, "TOO_MANY_REQUESTS", "too many " + what + " with a wrong cluster token from "
                    + from.getHostAddress() + "; retry after " + seconds + " s");
        }
        return from;
    }

    /** A failure of the HTTP exchange itself (method, body size), not of the domain. */
    private static final class HttpFailure extends RuntimeException {
        final int status;
        final String code;

        HttpFailure(int status, String code, String message) {
            super(message);
            this.status = status;
            this.code = code;
        }
    }

    private record Reply(int status, Object body) {}

    /** A body sent as is ({@code application/octet-stream}): a snapshot's bytes. */
    private record OctetStream(byte[] bytes) {}

    private void handle(HttpExchange ex) {
        long startNs = System.nanoTime();
        String route = "unknown";
        int status = 500;
        Caller caller = new Caller();
        try (ex) {
            String path = ex.getRequestURI().getRawPath();
            String method = ex.getRequestMethod();
            String[] seg = segments(path);
            route = routeOf(seg);
            if (route.equals("/v1/volumes") && method.equals("POST")) {
                io.ballast.cluster.CreateTrace.begin(startNs);
            }
            Reply reply;
            try {
                reply = dispatch(route, method, seg, ex, caller);
            } catch (BallastException e) {
                if (e.code().isSystemFault()) {
                    log.atError().setCause(e).addKeyValue("route", route).log("request failed: {}", e.getMessage());
                }
                HttpErrors.Problem p = e instanceof io.ballast.cluster.PermissionDenied
                        ? HttpErrors.of(403, "PERMISSION_DENIED", e.getMessage()) : HttpErrors.of(e);
                reply = new Reply(p.status(), p);
            } catch (HttpFailure e) {
                if (e.status == 405) {
                    ex.getResponseHeaders().set("Allow", allowed(route));
                }
                if (e.status == 401) {
                    ex.getResponseHeaders().set("WWW-Authenticate", "Bearer realm=\"ballast\"");
                }
                reply = new Reply(e.status, HttpErrors.of(e.status, e.code, e.getMessage()));
            } catch (RuntimeException e) {
                log.atError().setCause(e).addKeyValue("route", route).log("bug while serving {} {}", method, path);
                reply = new Reply(500, HttpErrors.of(500, "INTERNAL", "internal error: " + e));
            }
            status = reply.status();
            send(ex, reply);
        } catch (IOException e) {
            log.atDebug().log("client went away: {}", e.getMessage());
        } finally {
            io.ballast.cluster.CreateTrace.mark("rest_answer");
            long durationNs = System.nanoTime() - startNs;
            String method = metricMethod(ex.getRequestMethod());
            Metrics.observeApiRequest(route, method, status, durationNs);
            if (!method.equals("GET")) {
                Principal who = caller.principal;
                log.atInfo().addKeyValue("method", method).addKeyValue("route", route).addKeyValue("status", status)
                        .addKeyValue("principal", who == null ? null : who.name())
                        .addKeyValue("durationMs", durationNs / 1_000_000).log("api request");
                audit(who, method, ex.getRequestURI().getRawPath(), status);
            }
            io.ballast.cluster.CreateTrace.mark("after_answer_log_audit"); // not seen by the client
            io.ballast.cluster.CreateTrace.end();
        }
    }

    /**
     * Records a mutating call in the event log, after the answer went out (the client does not wait for
     * this Raft write). Calls of other members are not recorded: they carry out a call already recorded
     * where it was made.
     */
    private void audit(Principal who, String method, String path, int status) {
        AuthApi a = auth;
        if (a == null || who == null || who.isNode()) {
            return;
        }
        try {
            a.recordCall(who, method, path, status);
        } catch (RuntimeException e) {
            log.atWarn().addKeyValue("principal", who.name()).addKeyValue("method", method).addKeyValue("path", path)
                    .log("could not record the call in the audit trail: {}", e.getMessage());
        }
    }

    /**
     * The caller of a request to {@code route}, and whether they may: 401 without a valid credential, 405
     * for a method the route does not serve, 403 for a role below the endpoint's. Null for open endpoints.
     */
    private Principal authorize(String route, String method, HttpExchange ex, Caller caller) {
        RouteAccess.Rule rule = RouteAccess.rule(route, method);
        if (rule != null && rule.open()) {
            return null;
        }
        Principal who;
        try {
            // the local socket's caller is root or the node's user (checked on connect): the local admin,
            // unless it sends a token, which is then checked and used as over HTTPS
            who = ex instanceof UnixExchange u && ex.getRequestHeaders().getFirst("Authorization") == null
                    ? u.peer() : authenticator.authenticate(ex);
        } catch (Unauthenticated e) {
            throw new HttpFailure(401, "UNAUTHENTICATED", e.getMessage());
        }
        caller.principal = who;
        if (rule == null) {
            throw new HttpFailure(405, "METHOD_NOT_ALLOWED",
                    "method " + method + " not allowed on " + route + "; allowed: " + allowed(route));
        }
        if (!who.role().mayAct(rule.least())) {
            throw new HttpFailure(403, "PERMISSION_DENIED", "your role " + who.role().wireName() + " may not " + method + " "
                    + route + " (it needs " + rule.least().wireName() + "); ask an admin for a token with that role");
        }
        return who;
    }

    /** Clients choose the method string; keep the metric's label set bounded. */
    private static String metricMethod(String method) {
        return switch (method) {
            case "GET", "POST", "DELETE", "PUT", "PATCH", "HEAD", "OPTIONS" -> method;
            default -> "other";
        };
    }

    /** The path's segments, trailing slashes ignored; [0] is "" (the path starts with '/'). No regex: every request. */
    static String[] segments(String path) {
        int end = path.length();
        while (end > 0 && path.charAt(end - 1) == '/') {
            end--;
        }
        return path.substring(0, end).split("/"); // a one-character split takes String's fast path
    }

    static String routeOf(String[] seg) {
        // seg[0] is "" (path starts with '/')
        if (seg.length == 2 && seg[1].equals("healthz")) return "/healthz";
        if (seg.length == 2 && seg[1].equals("metrics")) return "/metrics";
        if (seg.length >= 2 && seg[1].equals("ui")) return "/ui";
        if (seg.length < 3 || !seg[1].equals("v1")) return "unknown";
        if (seg.length == 3 && seg[2].equals("node")) return "/v1/node";
        if (seg.length == 4 && seg[2].equals("node") && seg[3].equals("volume-io")) return "/v1/node/volume-io";
        if (seg.length == 4 && seg[2].equals("node") && seg[3].equals("pools")) return "/v1/node/pools";
        if (seg.length == 5 && seg[2].equals("node") && seg[3].equals("pools")) return "/v1/node/pools/{name}";
        if (seg.length == 3 && seg[2].equals("cluster")) return "/v1/cluster";
        if (seg.length == 4 && seg[2].equals("cluster") && seg[3].equals("join")) return "/v1/cluster/join";
        if (seg.length == 4 && seg[2].equals("cluster") && seg[3].equals("certificate")) return "/v1/cluster/certificate";
        if (seg.length == 4 && seg[2].equals("cluster") && seg[3].equals("ca")) return "/v1/cluster/ca";
        if (seg.length == 5 && seg[2].equals("cluster") && seg[3].equals("ca") && seg[4].equals("rotate")) return "/v1/cluster/ca/rotate";
        if (seg.length == 5 && seg[2].equals("cluster") && seg[3].equals("ca") && seg[4].equals("rotation")) {
            return "/v1/cluster/ca/rotation";
        }
        if (seg.length == 4 && seg[2].equals("cluster") && seg[3].equals("nbd-client-certificate")) {
            return "/v1/cluster/nbd-client-certificate";
        }
        if (seg.length == 5 && seg[2].equals("cluster") && seg[3].equals("nbd-client-certificate")) {
            return "/v1/cluster/nbd-client-certificate/{name}";
        }
        if (seg.length == 4 && seg[2].equals("cluster") && seg[3].equals("settings")) return "/v1/cluster/settings";
        if (seg.length == 4 && seg[2].equals("cluster") && seg[3].equals("encryption")) return "/v1/cluster/encryption";
        if (seg.length == 5 && seg[2].equals("cluster") && seg[3].equals("encryption") && seg[4].equals("rotate")) {
            return "/v1/cluster/encryption/rotate";
        }
        if (seg.length == 3 && seg[2].equals("events")) return "/v1/events";
        if (seg.length == 3 && seg[2].equals("watch")) return "/v1/watch";
        if (seg.length == 3 && seg[2].equals("snapshots")) return "/v1/snapshots";
        if (seg.length == 3 && seg[2].equals("snapshot-schedules")) return "/v1/snapshot-schedules";
        if (seg[2].equals("auth")) {
            if (seg.length == 4 && seg[3].equals("whoami")) return "/v1/auth/whoami";
            if (seg.length == 4 && seg[3].equals("tokens")) return "/v1/auth/tokens";
            if (seg.length == 5 && seg[3].equals("tokens")) return "/v1/auth/tokens/{id}";
            return "unknown";
        }
        if (seg[2].equals("backup-targets")) {
            if (seg.length == 3) return "/v1/backup-targets";
            if (seg.length == 4) return "/v1/backup-targets/{name}";
            return "unknown";
        }
        if (seg[2].equals("backups")) {
            if (seg.length == 3) return "/v1/backups";
            if (seg.length == 4) return "/v1/backups/{id}";
            if (seg.length == 5 && (seg[4].equals("verify") || seg[4].equals("restore"))) return "/v1/backups/{id}/" + seg[4];
            return "unknown";
        }
        if (seg[2].equals("backup-jobs")) {
            if (seg.length == 3) return "/v1/backup-jobs";
            if (seg.length == 4) return "/v1/backup-jobs/{id}";
            return "unknown";
        }
        if (seg[2].equals("nodes")) {
            if (seg.length == 3) return "/v1/nodes";
            if (seg.length == 4) return "/v1/nodes/{id}";
            if (seg.length == 5 && List.of("cordon", "uncordon", "drain").contains(seg[4])) return "/v1/nodes/{id}/" + seg[4];
            return "unknown";
        }
        if (!seg[2].equals("volumes")) return "unknown";
        if (seg.length == 3) return "/v1/volumes";
        if (seg.length == 4) return "/v1/volumes/{name}";
        if (seg.length == 5 && seg[4].equals("attach")) return "/v1/volumes/{name}/attach";
        if (seg.length == 5 && seg[4].equals("detach")) return "/v1/volumes/{name}/detach";
        if (seg.length == 5 && seg[4].equals("verify")) return "/v1/volumes/{name}/verify";
        if (seg.length == 5 && seg[4].equals("resize")) return "/v1/volumes/{name}/resize";
        if (seg.length == 5 && seg[4].equals("qos")) return "/v1/volumes/{name}/qos";
        if (seg.length == 5 && seg[4].equals("revert")) return "/v1/volumes/{name}/revert";
        if (seg.length == 5 && seg[4].equals("snapshots")) return "/v1/volumes/{name}/snapshots";
        if (seg.length == 6 && seg[4].equals("snapshots")) return "/v1/volumes/{name}/snapshots/{snap}";
        if (seg.length == 7 && seg[4].equals("snapshots") && seg[6].equals("changed-blocks")) {
            return "/v1/volumes/{name}/snapshots/{snap}/changed-blocks";
        }
        if (seg.length == 7 && seg[4].equals("snapshots") && seg[6].equals("data")) {
            return "/v1/volumes/{name}/snapshots/{snap}/data";
        }
        if (seg.length == 7 && seg[4].equals("snapshots") && seg[6].equals("verify")) {
            return "/v1/volumes/{name}/snapshots/{snap}/verify";
        }
        if (seg.length == 5 && seg[4].equals("snapshot-schedule")) return "/v1/volumes/{name}/snapshot-schedule";
        return "unknown";
    }

    private static String allowed(String route) {
        return RouteAccess.allowed(route);
    }

    /** The dashboard's files, from the jar (docs/dashboard.md). */
    private final StaticUi ui = new StaticUi(RestServer.class.getClassLoader());

    private record UiFile(StaticUi.File file, boolean notModified) {}

    private record Redirect(String location) {}

    /** {@code /ui} redirects to {@code /ui/} (the pages load their modules by relative URL); {@code /ui/NAME} is a file. */
    private Reply uiRoute(String[] seg, HttpExchange ex) {
        String raw = ex.getRequestURI().getRawPath();
        if (seg.length == 2 && !raw.endsWith("/")) {
            return new Reply(308, new Redirect("/ui/"));
        }
        String[] rest = java.util.Arrays.copyOfRange(seg, 2, seg.length);
        StaticUi.File f = ui.find(rest).orElseThrow(() -> new BallastException(io.ballast.common.ErrorCode.NOT_FOUND,
                "no such dashboard file: " + raw + " (the dashboard is at /ui/)"));
        String ifNoneMatch = ex.getRequestHeaders().getFirst("If-None-Match");
        return new Reply(200, new UiFile(f, f.etag().equals(ifNoneMatch)));
    }

    private Reply dispatch(String route, String method, String[] seg, HttpExchange ex, Caller caller) throws IOException {
        if (route.equals("unknown")) {
            throw new BallastException(io.ballast.common.ErrorCode.NOT_FOUND,
                    "no such endpoint: " + ex.getRequestURI().getRawPath() + " (see docs/api.md)");
        }
        if (route.equals("/ui")) {
            // the dashboard's files hold no data: a browser cannot send a token when it loads a page, and
            // every API call the page makes carries the user's token
            if (RouteAccess.rule(route, method) == null) {
                throw new HttpFailure(405, "METHOD_NOT_ALLOWED",
                        "method " + method + " not allowed on " + route + "; allowed: " + allowed(route));
            }
            return uiRoute(seg, ex);
        }
        Principal who = authorize(route, method, ex, caller);
        String name = seg.length > 3 ? seg[3] : null;
        if (route.startsWith("/v1/auth")) {
            return authRoute(route, method, seg, who, ex);
        }
        if (route.startsWith("/v1/backup")) {
            return backupRoute(route, method, name, ex);
        }
        if (route.equals("/v1/snapshot-schedules") || route.equals("/v1/volumes/{name}/snapshot-schedule")) {
            return scheduleRoute(route, method, name, ex);
        }
        if (route.equals("/v1/volumes/{name}/snapshots/{snap}/changed-blocks")) {
            return changedBlocks(name, seg[5], queryOf(ex));
        }
        if (route.equals("/v1/volumes/{name}/snapshots/{snap}/data")) {
            if (!(volumes instanceof io.ballast.control.ClusterVolumeService cvs)) {
                throw BallastException.invalid("snapshots need a cluster node");
            }
            java.util.Map<String, String> q = queryOf(ex);
            return new Reply(200, new OctetStream(cvs.localSnapshotData(name, seg[5], longParam(q, "offset", 0),
                    longParam(q, "length", io.ballast.control.ClusterVolumeService.MAX_SNAPSHOT_READ_BYTES))));
        }
        if (route.equals("/v1/volumes/{name}/snapshots/{snap}/verify")) {
            if (!(volumes instanceof io.ballast.control.ClusterVolumeService cvs)) {
                throw BallastException.invalid("snapshots need a cluster node");
            }
            if ("true".equals(queryOf(ex).get("local"))) {
                return new Reply(200, new ApiTypes.SnapshotCopy(cvs.nodeId(), cvs.localSnapshotSha256(name, seg[5]), null));
            }
            ApiTypes.SnapshotVerify v = verifySnapshot(cvs, name, seg[5]);
            return new Reply(200, v);
        }
        if (route.startsWith("/v1/cluster") || route.startsWith("/v1/nodes") || route.equals("/v1/events")
                || route.equals("/v1/watch")) {
            if (cluster == null) {
                throw new BallastException(io.ballast.common.ErrorCode.NOT_FOUND, "this node runs without a cluster");
            }
            java.util.Map<String, String> query = queryOf(ex);
            return switch (route + " " + method) {
                case "/v1/cluster GET" -> new Reply(200, cluster.status(!"true".equals(query.get("stale"))));
                case "/v1/cluster/join POST" -> {
                    java.net.InetAddress from = throttled(ex, "joins");
                    io.ballast.cluster.JoinRequest req = read(ex, io.ballast.cluster.JoinRequest.class);
                    if (req == null) {
                        throw BallastException.invalid("a join request body is required");
                    }
                    io.ballast.cluster.JoinRequest.Response joined;
                    try {
                        joined = cluster.join(req);
                    } catch (io.ballast.cluster.PermissionDenied e) {
                        joinThrottle.failed(from, nowMs());
                        throw e;
                    }
                    joinThrottle.succeeded(from);
                    yield new Reply(200, joined);
                }
                case "/v1/cluster/nbd-client-certificate/{name} DELETE" ->
                        new Reply(200, cluster.revokeNbdClientCertificates(seg[4]));
                case "/v1/cluster/nbd-client-certificate POST" -> {
                    ApiTypes.NbdClientCertificateRequest req = read(ex, ApiTypes.NbdClientCertificateRequest.class);
                    if (req == null) {
                        throw BallastException.invalid("a body {name, csr, lifetimeHours} is required");
                    }
                    String header = ex.getRequestHeaders().getFirst("Authorization");
                    String bearer = header != null && header.regionMatches(true, 0, "Bearer ", 0, 7) ? header.substring(7).strip() : null;
                    yield new Reply(200, cluster.issueNbdClientCertificate(req.name(), req.csr(),
                            req.lifetimeHours() == null ? 24L * 30 : req.lifetimeHours(), Boolean.TRUE.equals(req.forwarded()), bearer));
                }
                case "/v1/cluster/certificate POST" -> {
                    java.net.InetAddress from = throttled(ex, "certificate requests");
                    io.ballast.security.CertificateRequest req = read(ex, io.ballast.security.CertificateRequest.class);
                    if (req == null) {
                        throw BallastException.invalid("a certificate request body is required");
                    }
                    Object issued;
                    try {
                        issued = cluster.issueCertificate(req, peerNodeId(ex));
                    } catch (io.ballast.cluster.PermissionDenied e) {
                        joinThrottle.failed(from, nowMs());
                        throw e;
                    }
                    yield new Reply(200, issued);
                }
                case "/v1/cluster/ca GET" -> new Reply(200, cluster.ca());
                case "/v1/cluster/ca/rotation GET" -> new Reply(200, cluster.caRotation());
                case "/v1/cluster/ca/rotate POST" -> {
                    ApiTypes.RotateCaRequest req = read(ex, ApiTypes.RotateCaRequest.class);
                    String header = ex.getRequestHeaders().getFirst("Authorization");
                    String bearer = header != null && header.regionMatches(true, 0, "Bearer ", 0, 7) ? header.substring(7).strip() : null;
                    Principal by = caller.principal;
                    yield new Reply(200, cluster.rotateCa(req == null ? null : req.caCert(), req == null ? null : req.caKey(),
                            req != null && Boolean.TRUE.equals(req.forwarded()), bearer,
                            by == null ? null : by.name() + " (" + by.role().wireName() + ")"));
                }
                case "/v1/cluster/settings GET" -> new Reply(200, cluster.settings());
                case "/v1/cluster/settings PATCH" -> {
                    ApiTypes.SettingsChange req = read(ex, ApiTypes.SettingsChange.class);
                    if (req == null) {
                        throw BallastException.invalid("a body is required, e.g. {\"suspectAfterMs\": 5000}");
                    }
                    yield new Reply(200, cluster.updateSettings(req.heartbeatMs(), req.suspectAfterMs(), req.downAfterMs(),
                            req.rebuildAfterMs()));
                }
                case "/v1/cluster/encryption GET" -> new Reply(200, cluster.encryptionKeys());
                case "/v1/cluster/encryption/rotate POST" -> {
                    ApiTypes.RotateKeysRequest req = read(ex, ApiTypes.RotateKeysRequest.class);
                    if (req == null || req.expectedKeyId() == null || req.newKeyId() == null || req.keys() == null
                            || req.uuids() == null) {
                        throw BallastException.invalid("a body with expectedKeyId, newKeyId, uuids and keys is required"
                                + " (`ballast cluster rotate-key --new-key-file FILE` makes it)");
                    }
                    yield new Reply(200, cluster.rotateKeys(req));
                }
                case "/v1/events GET" -> events(query);
                case "/v1/watch GET" -> watch(query);
                case "/v1/nodes GET" -> {
                    ListQuery q = listQuery("GET /v1/nodes", query, "state", "label");
                    String state = q.filter("state");
                    if (state != null && !List.of("up", "suspect", "down").contains(state)) {
                        throw BallastException.invalid("query parameter 'state' must be up, suspect or down, got '" + state + "'");
                    }
                    var listed = cluster.nodes(state, labelsOf(q.filter("label")), q.afterKey, q.limit);
                    String last = listed.more() ? ((JsonNode) listed.items().getLast()).path("nodeId").asText() : null;
                    java.util.Map<String, Object> extra = new java.util.LinkedHashMap<>();
                    extra.put("leaderNodeId", cluster.leader());
                    yield new Reply(200, q.answer("nodes", listed.items(), last, listed.revision(), extra));
                }
                case "/v1/nodes/{id} GET" -> new Reply(200, cluster.node(name));
                case "/v1/nodes/{id} DELETE" -> new Reply(200, cluster.remove(name, "true".equals(query.get("force"))));
                case "/v1/nodes/{id}/cordon POST" -> new Reply(200, cluster.cordon(name, true));
                case "/v1/nodes/{id}/uncordon POST" -> new Reply(200, cluster.cordon(name, false));
                case "/v1/nodes/{id}/drain POST" -> new Reply(200, cluster.drain(name));
                default -> throw new IllegalStateException("unrouted " + route + " " + method);
            };
        }
        return switch (route + " " + method) {
            case "/healthz GET" -> node.healthy() ? new Reply(200, new Health("ok")) : new Reply(503, new Health("unavailable"));
            case "/metrics GET" -> new Reply(200, new MetricsBody());
            case "/v1/node GET" -> new Reply(200, node.nodeInfo());
            case "/v1/node/pools POST" -> {
                ApiTypes.AddPoolRequest req = read(ex, ApiTypes.AddPoolRequest.class);
                if (req == null || req.dir() == null || req.dir().isBlank()) {
                    throw BallastException.invalid("a body with the pool's directory is required, e.g. {\"dir\": \"/mnt/disk2\"}");
                }
                yield new Reply(200, node.addPool(req.name(), req.dir()));
            }
            case "/v1/node/pools/{name} DELETE" -> new Reply(202, node.removePool(seg[4]));
            case "/v1/node/volume-io GET" -> new Reply(200, new ApiTypes.NodeVolumeIo(
                    volumes instanceof io.ballast.control.ClusterVolumeService cvs ? cvs.nodeId() : null,
                    io.ballast.qos.VolumeIo.WINDOW.toMillis(),
                    volumes instanceof io.ballast.control.ClusterVolumeService cvs ? cvs.localIoRates() : java.util.Map.of()));
            case "/v1/volumes GET" -> {
                ListQuery q = listQuery("GET /v1/volumes", queryOf(ex), "node", "health", "prefix");
                var page = volumes.list(new io.ballast.control.VolumeFilter(q.filter("node"), q.filter("health"), q.filter("prefix")),
                        q.afterKey, q.limit);
                List<io.ballast.control.VolumeView> listed = withRemoteIo(page.volumes());
                yield new Reply(200, q.answer("volumes", listed, page.more() ? listed.getLast().name() : null,
                        page.revision(), null));
            }
            case "/v1/volumes POST" -> {
                ApiTypes.CreateVolumeRequest req = read(ex, ApiTypes.CreateVolumeRequest.class);
                if (req == null || req.name() == null) {
                    throw BallastException.invalid("field 'name' is required");
                }
                if (req.repl() != null && (req.repl() < 1 || req.repl() > MAX_REPL)) {
                    throw BallastException.invalid("field 'repl' must be between 1 and " + MAX_REPL + ", got " + req.repl());
                }
                if (req.minInSync() != null && (req.minInSync() < 1 || req.minInSync() > (req.repl() == null ? MAX_REPL : req.repl()))) {
                    throw BallastException.invalid("field 'minInSync' must be between 1 and repl ("
                            + (req.repl() == null ? "at most " + MAX_REPL : req.repl()) + "), got " + req.minInSync());
                }
                // ?wait=ready: answer once every replica's storage exists (see docs/control-plane.md)
                String wait = queryOf(ex).get("wait");
                if (wait != null && !wait.equals("ready")) {
                    throw BallastException.invalid("query parameter 'wait' must be 'ready', got '" + wait + "'");
                }
                boolean encrypted = Boolean.TRUE.equals(req.encrypted());
                boolean shared = Boolean.TRUE.equals(req.shared());
                if (req.fromSnapshot() != null) {
                    if (shared) {
                        throw BallastException.invalid("a volume created from a snapshot cannot be shared; create it, then"
                                + " copy the files over");
                    }
                    if (encrypted) {
                        throw BallastException.invalid("a volume created from a snapshot has the snapshot's encryption; omit 'encrypted'");
                    }
                    if (req.size() != null) {
                        throw BallastException.invalid("a volume created from a snapshot has the snapshot's size; omit 'size'");
                    }
                    if (req.preferNode() != null) {
                        throw BallastException.invalid("a volume created from a snapshot is placed where the snapshot is held;"
                                + " omit 'preferNode'");
                    }
                    io.ballast.common.SnapshotRef ref = io.ballast.common.SnapshotRef.parse(req.fromSnapshot());
                    yield new Reply(201, volumes.createFromSnapshot(req.name(), ref.volume(), ref.snapshot(),
                            req.repl() == null ? 0 : req.repl(), req.spreadBy(), req.minInSync() == null ? 0 : req.minInSync()));
                }
                Long maxIops = iopsOf(req.maxIops());
                Long maxBandwidth = bandwidthOf(req.maxBandwidth());
                Long minIops = minIopsOf(req.minIops());
                io.ballast.control.VolumeView created;
                io.ballast.cluster.CreateTrace.mark("rest_auth_parse");
                if (req.repl() != null || req.spreadBy() != null || req.minInSync() != null || wait != null || encrypted
                        || shared || req.preferNode() != null) {
                    created = volumes.create(req.name(), sizeOf(req.size()), req.repl() == null ? 0 : req.repl(),
                            req.spreadBy(), req.minInSync() == null ? 0 : req.minInSync(), wait != null, encrypted, shared,
                            req.preferNode());
                } else {
                    created = volumes.create(req.name(), sizeOf(req.size()));
                }
                io.ballast.cluster.CreateTrace.mark("view");
                if (maxIops != null && minIops != null && io.ballast.cluster.QosLimits.minAboveMax(maxIops, minIops) != null) {
                    throw BallastException.invalid(io.ballast.cluster.QosLimits.minAboveMax(maxIops, minIops)); // before creating
                }
                if ((maxIops != null && maxIops > 0) || (maxBandwidth != null && maxBandwidth > 0) || (minIops != null && minIops > 0)) {
                    // a second Raft write: the volume exists unlimited for the moment in between
                    created = volumes.setQos(req.name(), maxIops, maxBandwidth, minIops);
                }
                yield new Reply(201, created);
            }
            case "/v1/volumes/{name} GET" -> {
                String follow = queryOf(ex).get("follow");
                if (follow != null && !follow.equals("engine")) {
                    throw BallastException.invalid("query parameter 'follow' must be 'engine', got '" + follow + "'");
                }
                io.ballast.control.VolumeView v = withRemoteIo(List.of(volumes.inspect(name))).getFirst();
                yield new Reply(200, follow == null ? v : withRemoteEngineStatus(v));
            }
            case "/v1/volumes/{name} DELETE" -> {
                volumes.delete(name);
                yield new Reply(204, null);
            }
            case "/v1/volumes/{name}/attach POST" -> {
                ApiTypes.AttachRequest req = read(ex, ApiTypes.AttachRequest.class);
                String mount = req == null ? null : req.mount();
                boolean force = req != null && Boolean.TRUE.equals(req.force());
                io.ballast.attach.FsType fsType = io.ballast.attach.FsType.parse(req == null ? null : req.fsType());
                java.util.Optional<String> nfs = volumes.sharedAddress(name);
                if (nfs.isPresent()) {
                    if (mount != null) {
                        throw BallastException.invalid("volume " + name + " is shared: mount " + nfs.get()
                                + " with an NFS client; omit 'mount'");
                    }
                    // a shared volume is mounted over NFS: nothing to attach, the answer names its address and server
                    io.ballast.control.VolumeView v = volumes.inspect(name);
                    yield new Reply(200, io.ballast.control.AttachmentView.nfs(name, v.share() == null ? null : v.share().nodeId(),
                            v.attachEpoch(), nfs.get()));
                }
                io.ballast.cluster.Attachment a = volumes.attach(name, mount == null ? null : Path.of(mount), force, fsType);
                yield new Reply(200, attachmentAnswer(a, volumes.inspect(name)));
            }
            case "/v1/volumes/{name}/verify GET", "/v1/volumes/{name}/verify POST" -> verify(name, queryOf(ex));
            case "/v1/volumes/{name}/qos POST" -> {
                ApiTypes.SetQosRequest req = read(ex, ApiTypes.SetQosRequest.class);
                Long maxIops = req == null ? null : iopsOf(req.maxIops());
                Long maxBandwidth = req == null ? null : bandwidthOf(req.maxBandwidth());
                Long minIops = req == null ? null : minIopsOf(req.minIops());
                if (maxIops == null && maxBandwidth == null && minIops == null) {
                    throw BallastException.invalid("give 'maxIops', 'maxBandwidth', 'minIops' or several (0 or \"unlimited\""
                            + " clears a limit, 0 or \"none\" the minimum)");
                }
                yield new Reply(200, volumes.setQos(name, maxIops, maxBandwidth, minIops));
            }
            case "/v1/volumes/{name}/resize POST" -> {
                ApiTypes.ResizeRequest req = read(ex, ApiTypes.ResizeRequest.class);
                yield new Reply(200, volumes.resize(name, sizeOf(req == null ? null : req.size())));
            }
            case "/v1/snapshots GET" -> {
                ListQuery q = listQuery("GET /v1/snapshots", queryOf(ex), "volume");
                long rev = revision();
                var slice = q.slice(volumes.listSnapshots(q.filter("volume")), s -> s.volume() + "@" + s.name());
                yield new Reply(200, q.answer("snapshots", slice.items(), slice.lastKey(), rev, null));
            }
            case "/v1/volumes/{name}/snapshots GET" -> {
                ListQuery q = listQuery("GET /v1/volumes/" + name + "/snapshots", queryOf(ex));
                long rev = revision();
                var slice = q.slice(volumes.listSnapshots(name), io.ballast.control.SnapshotView::name);
                yield new Reply(200, q.answer("snapshots", slice.items(), slice.lastKey(), rev, null));
            }
            case "/v1/volumes/{name}/snapshots POST" -> {
                ApiTypes.CreateSnapshotRequest req = read(ex, ApiTypes.CreateSnapshotRequest.class);
                if (req == null || req.name() == null) {
                    throw BallastException.invalid("field 'name' is required");
                }
                yield new Reply(201, volumes.createSnapshot(name, req.name()));
            }
            case "/v1/volumes/{name}/snapshots/{snap} GET" -> new Reply(200, volumes.inspectSnapshot(name, seg[5]));
            case "/v1/volumes/{name}/snapshots/{snap} DELETE" -> {
                volumes.deleteSnapshot(name, seg[5]);
                yield new Reply(204, null);
            }
            case "/v1/volumes/{name}/revert POST" -> {
                ApiTypes.RevertRequest req = read(ex, ApiTypes.RevertRequest.class);
                if (req == null || req.snapshot() == null) {
                    throw BallastException.invalid("field 'snapshot' is required");
                }
                yield new Reply(200, volumes.revert(name, req.snapshot()));
            }
            case "/v1/volumes/{name}/detach POST" -> {
                read(ex, JsonNode.class); // drain and bound the body even though it is unused
                io.ballast.control.VolumeView before = volumes.inspect(name); // the removed attachment's epoch and kind
                yield new Reply(200, attachmentAnswer(volumes.detach(name), before));
            }
            default -> throw new IllegalStateException("unrouted " + route + " " + method);
        };
    }

    private Reply scheduleRoute(String route, String method, String name, HttpExchange ex) throws IOException {
        io.ballast.control.SnapshotScheduler sched = schedules;
        if (sched == null) {
            throw new BallastException(io.ballast.common.ErrorCode.NOT_FOUND, "this node runs without a cluster: no snapshot schedules");
        }
        return switch (route + " " + method) {
            case "/v1/snapshot-schedules GET" -> jsonPage(listQuery("GET /v1/snapshot-schedules", queryOf(ex)), revision(),
                    new ApiTypes.ScheduleList(sched.list().stream().map(ApiTypes.ScheduleView::of).toList()), "schedules", "volume");
            case "/v1/volumes/{name}/snapshot-schedule GET" -> new Reply(200, ApiTypes.ScheduleView.of(sched.get(name)));
            case "/v1/volumes/{name}/snapshot-schedule PUT" -> {
                ApiTypes.ScheduleRequest req = read(ex, ApiTypes.ScheduleRequest.class);
                if (req == null || (req.every() == null && req.everyMs() == null) || req.keep() == null) {
                    throw BallastException.invalid("fields 'every' (e.g. \"1h\", \"30s\") and 'keep' are required");
                }
                long everyMs = req.everyMs() != null ? req.everyMs() : io.ballast.common.Durations.parseMs(req.every(), "every");
                yield new Reply(200, ApiTypes.ScheduleView.of(sched.set(name, everyMs, req.keep())));
            }
            case "/v1/volumes/{name}/snapshot-schedule DELETE" -> {
                sched.delete(name);
                yield new Reply(204, null);
            }
            default -> throw new IllegalStateException("unrouted " + route + " " + method);
        };
    }

    /** Each holder's digest of the snapshot: this node's own, the others' through their API ({@code ?local}). */
    private ApiTypes.SnapshotVerify verifySnapshot(io.ballast.control.ClusterVolumeService cvs, String volume, String snap) {
        List<ApiTypes.SnapshotCopy> copies = new java.util.ArrayList<>();
        for (io.ballast.control.ClusterVolumeService.Holder h : cvs.snapshotHolders(volume, snap)) {
            try {
                String sha;
                if (h.self()) {
                    sha = cvs.localSnapshotSha256(volume, snap);
                } else if (h.node() == null) {
                    throw new BallastException(io.ballast.common.ErrorCode.UNAVAILABLE, "node " + h.nodeId() + " is not a member any more");
                } else {
                    sha = peers.call(h.node(), "GET", "/v1/volumes/" + volume + "/snapshots/" + snap + "/verify?local", null)
                            .path("sha256").asText();
                }
                copies.add(new ApiTypes.SnapshotCopy(h.nodeId(), sha, null));
            } catch (BallastException e) {
                boolean down = e.code() == io.ballast.common.ErrorCode.UNAVAILABLE;
                copies.add(new ApiTypes.SnapshotCopy(h.nodeId(), null, (down ? "unreachable: " : "") + e.getMessage()));
            }
        }
        // a holder that is down is not compared (and says so); any other failure (a bad CRC, a copy missing) is a difference
        boolean identical = copies.stream().noneMatch(c -> c.sha256() == null && !c.error().startsWith("unreachable: "))
                && copies.stream().map(ApiTypes.SnapshotCopy::sha256).filter(java.util.Objects::nonNull).distinct().count() == 1;
        return new ApiTypes.SnapshotVerify(volume, snap, identical, copies);
    }

    /** Computed where both snapshots are held: here, or asked once of a node that holds them. */
    private Reply changedBlocks(String name, String snap, java.util.Map<String, String> query) {
        if (!(volumes instanceof io.ballast.control.ClusterVolumeService cvs)) {
            throw BallastException.invalid("snapshots need a cluster node");
        }
        String base = query.get("base");
        long start = longParam(query, "startOffset", 0);
        int max = (int) Math.min(Integer.MAX_VALUE, longParam(query, "maxResults", io.ballast.control.ClusterVolumeService.MAX_CHANGED_EXTENTS));
        return switch (cvs.changedBlocks(name, snap, base, start, max)) {
            case io.ballast.control.ClusterVolumeService.ChangedBlocks.Here h -> new Reply(200, new ApiTypes.ChangedBlocks(h.volume(),
                    h.snapshot(), h.base(), h.volumeSizeBytes(), 4096,
                    h.extents().stream().map(e -> new ApiTypes.BlockExtent(e.offsetBytes(), e.lengthBytes())).toList(),
                    h.nextOffsetBytes()));
            case io.ballast.control.ClusterVolumeService.ChangedBlocks.Elsewhere(var node) -> {
                if ("1".equals(query.get("proxied"))) {
                    throw new BallastException(io.ballast.common.ErrorCode.UNAVAILABLE, "node " + node.id()
                            + " was asked for the changed blocks but does not hold both snapshots now; retry");
                }
                String q = "?proxied=1&startOffset=" + start + "&maxResults=" + max
                        + (base == null ? "" : "&base=" + java.net.URLEncoder.encode(base, StandardCharsets.UTF_8));
                yield new Reply(200, peers.call(node, "GET", "/v1/volumes/" + name + "/snapshots/" + snap + "/changed-blocks" + q, null));
            }
        };
    }

    /** {@code views} with the I/O rates of volumes attached on other nodes, asked there (docs/api.md, "I/O rates"). */
    private List<io.ballast.control.VolumeView> withRemoteIo(List<io.ballast.control.VolumeView> views) {
        return volumes instanceof io.ballast.control.ClusterVolumeService cvs ? remoteIo.fill(views, cvs.nodeId()) : views;
    }

    /** A volume view polled by the dashboard must not hang on a slow engine node. */
    static final java.time.Duration ENGINE_STATUS_TIMEOUT = java.time.Duration.ofSeconds(3);

    /**
     * {@code ?follow=engine}: when the volume's engine runs on another node, that node's engine status
     * is asked for and put in {@code engine.status} (on failure {@code engine.statusError} says why), so
     * a browser, which talks to one node only, sees the in-sync set and resync progress.
     */
    private JsonNode withRemoteEngineStatus(io.ballast.control.VolumeView v) {
        com.fasterxml.jackson.databind.node.ObjectNode tree = JSON.valueToTree(v);
        io.ballast.control.VolumeView.Engine e = v.engine();
        if (e == null || e.status() != null || e.apiUrl() == null) {
            return tree;
        }
        com.fasterxml.jackson.databind.node.ObjectNode engine = (com.fasterxml.jackson.databind.node.ObjectNode) tree.get("engine");
        try {
            JsonNode there = peers.call(e.nodeId(), e.apiUrl(), "GET", "/v1/volumes/" + v.name(), null, ENGINE_STATUS_TIMEOUT);
            JsonNode status = there.path("engine").get("status");
            engine.set("status", status == null ? com.fasterxml.jackson.databind.node.NullNode.getInstance() : status);
            if (status != null && "fenced".equals(status.path("state").asText())) {
                tree.put("health", io.ballast.control.ClusterVolumeService.UNAVAILABLE_FENCED); // as the holder says
            }
        } catch (BallastException failed) {
            engine.put("statusError", failed.getMessage());
        }
        return tree;
    }

    /** Replicas per volume the API accepts (what placement and the engine are built and tested for). */
    static final int MAX_REPL = 3;

    /** Runs where the volume is attached: here, or proxied once to the attached node's API. */
    private Reply verify(String name, java.util.Map<String, String> query) {
        if (!(volumes instanceof io.ballast.control.ClusterVolumeService cvs)) {
            throw BallastException.conflict("this node runs without a cluster: there is one copy, nothing to compare");
        }
        return switch (cvs.verify(name)) {
            case io.ballast.control.ClusterVolumeService.Verify.Here(var report) ->
            {
                // the snapshots too: each one's copies on the nodes that hold it
                List<ApiTypes.SnapshotVerify> snaps = cvs.snapshotNames(name).stream().map(s -> verifySnapshot(cvs, name, s)).toList();
                yield new Reply(200, new ApiTypes.VerifyResponse(name, nodeIdOf(report),
                        report.identical() && snaps.stream().allMatch(ApiTypes.SnapshotVerify::identical), report, snaps));
            }
            case io.ballast.control.ClusterVolumeService.Verify.Elsewhere(var nodeId, var apiUrl) -> {
                if ("1".equals(query.get("proxied")) || apiUrl == null) {
                    throw BallastException.conflict("volume " + name + " is attached on " + nodeId
                            + " but that node cannot run the comparison now; retry");
                }
                try {
                    var proxied = java.net.http.HttpRequest.newBuilder(java.net.URI.create(apiUrl + "/v1/volumes/" + name + "/verify?proxied=1"))
                            .timeout(java.time.Duration.ofMinutes(30)).GET();
                    AuthApi a = auth;
                    if (a != null) {
                        proxied.header("Authorization", "Bearer " + a.peerBearer());
                    }
                    var resp = io.ballast.security.Https.client(tls, java.time.Duration.ofSeconds(5)).send(
                            proxied.build(),
                            java.net.http.HttpResponse.BodyHandlers.ofByteArray());
                    yield new Reply(resp.statusCode(), JSON.readTree(resp.body()));
                } catch (IOException e) {
                    throw new BallastException(io.ballast.common.ErrorCode.UNAVAILABLE, "volume " + name + " is attached on "
                            + nodeId + ", which does not answer at " + apiUrl + ": " + e.getMessage());
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new BallastException(io.ballast.common.ErrorCode.UNAVAILABLE, "interrupted");
                }
            }
        };
    }

    private String nodeIdOf(io.ballast.replication.VerifyReport report) {
        return volumes instanceof io.ballast.control.ClusterVolumeService cvs ? cvs.nodeId() : null;
    }

    private record Health(String status) {}

    private static java.util.Map<String, String> queryOf(HttpExchange ex) {
        java.util.Map<String, String> out = new java.util.TreeMap<>();
        String q = ex.getRequestURI().getRawQuery();
        if (q == null || q.isEmpty()) {
            return out;
        }
        for (String kv : q.split("&")) {
            int eq = kv.indexOf('=');
            String k = java.net.URLDecoder.decode(eq < 0 ? kv : kv.substring(0, eq), StandardCharsets.UTF_8);
            String v = eq < 0 ? "true" : java.net.URLDecoder.decode(kv.substring(eq + 1), StandardCharsets.UTF_8);
            out.put(k, v);
        }
        return out;
    }

    private static long longParam(java.util.Map<String, String> q, String name, long dflt) {
        String v = q.get(name);
        if (v == null) {
            return dflt;
        }
        try {
            long n = Long.parseLong(v);
            if (n < 0) {
                throw new NumberFormatException();
            }
            return n;
        } catch (NumberFormatException e) {
            throw BallastException.invalid("query parameter '" + name + "' must be a non-negative whole number, got '" + v + "'");
        }
    }

    private record MetricsBody() {}

    // ---- lists (docs/api.md, "Lists: pages, filters, watch") ----

    /** The list parameters of {@code list}; a continue token's revision must still be followable (410 otherwise). */
    private ListQuery listQuery(String list, java.util.Map<String, String> query, String... filters) {
        ListQuery q = ListQuery.of(list, query, java.util.Set.of(filters));
        if (!q.firstPage() && cluster != null) {
            cluster.requireRetained(q.startRevision, "continue token of");
        }
        return q;
    }

    /** The metadata revision a list is read at (0 on a node without a cluster). */
    private long revision() {
        return cluster == null ? 0 : cluster.revision();
    }

    /** {@code label=k=v[,k2=v2]}: every pair must match. */
    private static java.util.Map<String, String> labelsOf(String spec) {
        java.util.Map<String, String> out = new java.util.TreeMap<>();
        if (spec == null) {
            return out;
        }
        for (String kv : spec.split(",")) {
            int eq = kv.indexOf('=');
            if (eq <= 0 || eq == kv.length() - 1) {
                throw BallastException.invalid("query parameter 'label' must be KEY=VALUE[,KEY=VALUE...], got '" + spec + "'");
            }
            out.put(kv.substring(0, eq).strip(), kv.substring(eq + 1).strip());
        }
        return out;
    }

    /**
     * Pages a list answer that is read whole (tokens, backups, schedules: small, or not in the metadata):
     * the array {@code field} of {@code body} sliced after the cursor by each item's {@code keyField}; the
     * other fields of the body stay.
     */
    private static Reply jsonPage(ListQuery q, long revision, Object body, String field, String keyField) {
        com.fasterxml.jackson.databind.node.ObjectNode tree = JSON.valueToTree(body);
        List<JsonNode> items = new java.util.ArrayList<>();
        tree.path(field).forEach(items::add);
        var slice = q.slice(items, j -> j.path(keyField).asText());
        java.util.Map<String, Object> extra = new java.util.LinkedHashMap<>();
        tree.properties().forEach(e -> {
            if (!e.getKey().equals(field)) {
                extra.put(e.getKey(), e.getValue());
            }
        });
        return new Reply(200, q.answer(field, slice.items(), slice.lastKey(), revision, extra));
    }

    /**
     * {@code GET /v1/events}: without {@code after} or {@code continue}, the newest {@code limit} (as
     * always); with either, the first {@code limit} after that point, and a {@code continue} when more follow.
     */
    private Reply events(java.util.Map<String, String> query) {
        ListQuery q = listQuery("GET /v1/events", query, "volume", "node");
        if (q.filter("volume") != null && q.filter("node") != null) {
            throw BallastException.invalid("give 'volume' or 'node', not both: an event has one subject");
        }
        String subject = q.filter("volume") != null ? q.filter("volume") : q.filter("node");
        boolean forward = query.containsKey("after") || !q.firstPage();
        if (query.containsKey("after") && !q.firstPage()) {
            throw BallastException.invalid("give 'after' or 'continue', not both");
        }
        long after;
        try {
            after = q.firstPage() ? longParam(query, "after", 0) : Long.parseLong(q.afterKey);
        } catch (NumberFormatException e) {
            throw BallastException.invalid("query parameter 'continue' is not a token of GET /v1/events");
        }
        int limit = q.limit > 0 ? q.limit : (int) Math.min(longParam(query, "limit", 100), MAX_EVENTS);
        var listed = cluster.events(after, subject, limit, forward);
        String last = listed.more() ? Long.toString(listed.items().getLast().seq()) : null;
        return new Reply(200, q.answer("events", listed.items(), last, listed.revision(), null));
    }

    /** Events a call answers at most (the cluster keeps this many). */
    private static final int MAX_EVENTS = io.ballast.cluster.ClusterState.MAX_EVENTS;
    /** The longest a watch call waits for a change. */
    static final long MAX_WATCH_TIMEOUT_MS = 60_000;
    static final long DEFAULT_WATCH_TIMEOUT_MS = 30_000;
    /** Changes per watch answer (a revision is never split, so an answer may hold a few more). */
    static final int MAX_WATCH_CHANGES = 1000;

    /** One change as a watcher sees it: the object as the list shows it (before a delete: as it was). */
    public record WatchEvent(long revision, String type, String kind, String name, Object object) {}

    /**
     * {@code GET /v1/watch?since=REV}: the changes to volumes and nodes after revision REV (the
     * {@code revision} of a list answer or of the previous watch answer), waiting up to {@code timeoutMs}
     * for one (long poll); 410 when REV is older than the changes this member keeps.
     */
    private Reply watch(java.util.Map<String, String> query) {
        if (!query.containsKey("since")) {
            throw BallastException.invalid("query parameter 'since' is required: the 'revision' of a list answer (or of the"
                    + " previous watch answer)");
        }
        long since = longParam(query, "since", 0);
        long timeoutMs = longParam(query, "timeoutMs", DEFAULT_WATCH_TIMEOUT_MS);
        if (timeoutMs > MAX_WATCH_TIMEOUT_MS) {
            throw BallastException.invalid("query parameter 'timeoutMs' must be at most " + MAX_WATCH_TIMEOUT_MS + ", got " + timeoutMs);
        }
        String kind = query.get("kind");
        if (kind != null && !kind.equals("volume") && !kind.equals("node")) {
            throw BallastException.invalid("query parameter 'kind' must be volume or node, got '" + kind + "'");
        }
        String name = query.get("name");
        String prefix = query.get("prefix");
        io.ballast.cluster.ChangeLog.Batch b = cluster.watch(since, c -> (kind == null || kind.equals(c.kind()))
                && (name == null || name.equals(c.name())) && (prefix == null || c.name().startsWith(prefix)),
                MAX_WATCH_CHANGES, timeoutMs);
        List<WatchEvent> out = new java.util.ArrayList<>(b.changes().size());
        for (io.ballast.cluster.ChangeLog.Change c : b.changes()) {
            Object object = switch (c.record()) {
                case io.ballast.cluster.VolumeRecord v when volumes instanceof io.ballast.control.ClusterVolumeService cvs -> cvs.viewOf(v);
                case io.ballast.cluster.NodeRecord n -> cluster.nodeView(n);
                default -> c.record();
            };
            out.add(new WatchEvent(c.revision(), c.type().name(), c.kind(), c.name(), object));
        }
        java.util.Map<String, Object> body = new java.util.LinkedHashMap<>();
        body.put("revision", b.revision());
        body.put("events", out);
        return new Reply(200, body);
    }

    /**
     * An attach or detach answer: the attachment {@code a} in the one attachment shape, with the epoch and
     * kind of {@code view}'s attachment when that is on the same node (else a takeover came between: epoch 0).
     */
    static io.ballast.control.AttachmentView attachmentAnswer(io.ballast.cluster.Attachment a, io.ballast.control.VolumeView view) {
        io.ballast.control.AttachmentView known = view.attachmentView();
        boolean same = known != null && a != null && known.nodeId().equals(a.nodeId());
        return io.ballast.control.AttachmentView.of(a, same ? known.epoch() : 0, same ? known.kind() : null);
    }

    /** The backup endpoints (docs/api.md, "Backups"): long operations answer 202 with a job unless ?wait=true. */
    private Reply backupRoute(String route, String method, String name, HttpExchange ex) throws IOException {
        io.ballast.backup.BackupService b = backups;
        if (b == null) {
            throw new BallastException(io.ballast.common.ErrorCode.NOT_FOUND, "this node serves no backups");
        }
        java.util.Map<String, String> query = queryOf(ex);
        boolean wait = "true".equals(query.get("wait"));
        return switch (route + " " + method) {
            case "/v1/backup-targets GET" -> jsonPage(listQuery("GET /v1/backup-targets", query), revision(),
                    java.util.Map.of("targets", b.targets()), "targets", "name");
            case "/v1/backup-targets POST" -> {
                ApiTypes.AddBackupTargetRequest r = read(ex, ApiTypes.AddBackupTargetRequest.class);
                if (r == null) {
                    throw BallastException.invalid("a body is required: {\"name\":...,\"url\":\"s3://BUCKET/PREFIX\",\"region\":...,\"keyFile\":...}");
                }
                long chunk = r.chunkSize() == null || r.chunkSize().isNull() ? 0 : sizeOf(r.chunkSize());
                if (chunk > Integer.MAX_VALUE) {
                    throw BallastException.invalid("chunk size too large");
                }
                yield new Reply(201, b.addTarget(new io.ballast.backup.TargetSpec(r.name(), r.url(), r.endpoint(), r.region(),
                        r.credentialsFile(), r.accessKeyEnv(), r.secretKeyEnv(), r.keyFile(), (int) chunk, null)));
            }
            case "/v1/backup-targets/{name} GET" -> new Reply(200, b.target(name));
            case "/v1/backup-targets/{name} DELETE" -> new Reply(200, b.removeTarget(name));
            case "/v1/backups GET" -> {
                ListQuery q = listQuery("GET /v1/backups", query, "target", "volume");
                long rev = revision();
                io.ballast.backup.BackupService.BackupList all = b.list(q.filter("target"));
                yield jsonPage(q, rev, q.filter("volume") == null ? all : new io.ballast.backup.BackupService.BackupList(
                        all.backups().stream().filter(x -> q.filter("volume").equals(x.volume())).toList(), all.errors()),
                        "backups", "id");
            }
            case "/v1/backups POST" -> {
                ApiTypes.CreateBackupRequest r = read(ex, ApiTypes.CreateBackupRequest.class);
                if (r == null || r.volume() == null) {
                    throw BallastException.invalid("field 'volume' is required");
                }
                Object out = b.create(r.volume(), r.target(), r.fromSnapshot(), rateOf(r.rate()), wait);
                yield new Reply(wait ? 201 : 202, out);
            }
            case "/v1/backups/{id} GET" -> new Reply(200, b.inspect(name, query.get("target")));
            case "/v1/backups/{id} DELETE" -> new Reply(200, b.delete(name, query.get("target")));
            case "/v1/backups/{id}/verify POST" -> {
                ApiTypes.VerifyBackupRequest r = read(ex, ApiTypes.VerifyBackupRequest.class);
                yield new Reply(wait ? 200 : 202, b.verify(name, r == null ? query.get("target") : r.target(), wait));
            }
            case "/v1/backups/{id}/restore POST" -> {
                ApiTypes.RestoreBackupRequest r = read(ex, ApiTypes.RestoreBackupRequest.class);
                if (r == null || r.to() == null) {
                    throw BallastException.invalid("field 'to' (the new volume's name) is required");
                }
                yield new Reply(wait ? 201 : 202, b.restore(name, r.target(), r.to(), rateOf(r.rate()), wait));
            }
            case "/v1/backup-jobs GET" -> jsonPage(listQuery("GET /v1/backup-jobs", query), revision(),
                    java.util.Map.of("jobs", b.jobs()), "jobs", "id");
            case "/v1/backup-jobs/{id} GET" -> new Reply(200, b.job(name));
            default -> throw new IllegalStateException("unrouted " + route + " " + method);
        };
    }

    /** The token endpoints (docs/api.md, "Authentication"); RouteAccess keeps them admin-only, whoami aside. */
    private Reply authRoute(String route, String method, String[] seg, Principal who, HttpExchange ex) throws IOException {
        if (route.equals("/v1/auth/whoami")) {
            return new Reply(200, java.util.Map.of("name", who.name(), "role", who.role().wireName()));
        }
        AuthApi a = auth;
        if (a == null) {
            throw new BallastException(io.ballast.common.ErrorCode.NOT_FOUND, "this node serves no API tokens");
        }
        return switch (route + " " + method) {
            case "/v1/auth/tokens GET" -> jsonPage(listQuery("GET /v1/auth/tokens", queryOf(ex)), revision(), a.listTokens(),
                    "tokens", "id");
            case "/v1/auth/tokens POST" -> {
                ApiTypes.CreateTokenRequest r = read(ex, ApiTypes.CreateTokenRequest.class);
                if (r == null || r.name() == null || r.role() == null) {
                    throw BallastException.invalid("fields 'name' and 'role' (viewer, operator or admin) are required");
                }
                io.ballast.auth.Role role = io.ballast.auth.Role.ofUserRole(r.role());
                if (role == null) {
                    throw BallastException.invalid("field 'role' must be viewer, operator or admin, got '" + r.role() + "'");
                }
                if (r.ttlSeconds() != null && r.ttlSeconds() <= 0) {
                    throw BallastException.invalid("field 'ttlSeconds' must be positive, got " + r.ttlSeconds());
                }
                yield new Reply(201, a.createToken(r.name(), role, r.ttlSeconds(), who));
            }
            case "/v1/auth/tokens/{id} DELETE" -> new Reply(200, a.revokeToken(seg[4], who));
            default -> throw new IllegalStateException("unrouted " + route + " " + method);
        };
    }

    /** The QoS minimum field: a whole number, or "none"; null when absent. */
    private static Long minIopsOf(JsonNode n) {
        return opsOf(n, "minIops", "none", io.ballast.qos.QosValues::parseMinIops);
    }

    /** A QoS IOPS field: a whole number or "unlimited"; null when absent. */
    private static Long iopsOf(JsonNode n) {
        return opsOf(n, "maxIops", "unlimited", io.ballast.qos.QosValues::parseIops);
    }

    /** An operations-per-second field: a whole number or its off word as a string; null when absent. */
    private static Long opsOf(JsonNode n, String field, String offWord, java.util.function.ToLongFunction<String> parse) {
        if (n == null || n.isNull() || n.isMissingNode()) {
            return null;
        }
        if (n.isIntegralNumber() && n.canConvertToLong()) {
            return parse.applyAsLong(Long.toString(n.longValue()));
        }
        if (n.isTextual()) {
            return parse.applyAsLong(n.textValue());
        }
        throw BallastException.invalid("field '" + field + "' must be a whole number or \"" + offWord + "\", got " + n);
    }

    /** A QoS bandwidth field: bytes per second as a number or a size string ("100MiB", "1G/s", "unlimited"); null when absent. */
    private static Long bandwidthOf(JsonNode n) {
        if (n == null || n.isNull() || n.isMissingNode()) {
            return null;
        }
        if (n.isIntegralNumber() && n.canConvertToLong()) {
            if (n.longValue() < 0) {
                throw BallastException.invalid("field 'maxBandwidth' must be >= 0 (0: unlimited), got " + n);
            }
            return n.longValue();
        }
        if (n.isTextual()) {
            return io.ballast.qos.QosValues.parseBandwidth(n.textValue());
        }
        throw BallastException.invalid("field 'maxBandwidth' must be bytes per second or a string like \"100MiB\", got " + n);
    }

    private static Long rateOf(JsonNode rate) {
        if (rate == null || rate.isNull()) {
            return null;
        }
        long r = rate.isTextual() ? Sizes.parse(rate.textValue().replaceAll("(?i)/s$", "")) : sizeOf(rate);
        if (r <= 0) {
            throw BallastException.invalid("rate must be positive, got " + rate);
        }
        return r;
    }

    static long sizeOf(JsonNode size) {
        if (size == null || size.isNull() || size.isMissingNode()) {
            throw BallastException.invalid("field 'size' is required: a byte count or a string like \"10GiB\"");
        }
        if (size.isIntegralNumber()) {
            if (!size.canConvertToLong()) {
                throw BallastException.invalid("size " + size + " is too large");
            }
            return size.longValue();
        }
        if (size.isTextual()) {
            return Sizes.parse(size.textValue());
        }
        throw BallastException.invalid("field 'size' must be a whole byte count or a string like \"10GiB\", got " + size);
    }

    /** Reads a bounded JSON body; null when the body is empty. */
    private static <T> T read(HttpExchange ex, Class<T> type) throws IOException {
        String declared = ex.getRequestHeaders().getFirst("Content-Length");
        if (declared != null) {
            try {
                if (Long.parseLong(declared.trim()) > MAX_BODY_BYTES) {
                    discard(ex.getRequestBody());
                    throw tooLarge();
                }
            } catch (NumberFormatException e) {
                throw BallastException.invalid("invalid Content-Length header");
            }
        }
        byte[] body = readAtMost(ex.getRequestBody(), MAX_BODY_BYTES);
        if (body.length == 0) {
            return null;
        }
        try {
            return JSON.readValue(body, type);
        } catch (UnrecognizedPropertyException e) {
            throw BallastException.invalid("unknown field '" + e.getPropertyName() + "'; accepted fields: "
                    + String.join(", ", e.getKnownPropertyIds().stream().map(Object::toString).sorted().toList()));
        } catch (MismatchedInputException e) {
            String field = e.getPath().isEmpty() ? null : e.getPath().getLast().getFieldName();
            if (field != null && e.getTargetType() == String.class) {
                throw BallastException.invalid(field + " must be a string");
            }
            throw BallastException.invalid((field == null ? "request body" : "field '" + field + "'")
                    + " has the wrong type: " + e.getOriginalMessage());
        } catch (JsonProcessingException e) {
            throw BallastException.invalid("malformed JSON: " + e.getOriginalMessage()
                    + (e.getLocation() == null ? "" : " at line " + e.getLocation().getLineNr()
                    + ", column " + e.getLocation().getColumnNr()));
        }
    }

    private static byte[] readAtMost(InputStream in, int limit) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        byte[] buf = new byte[8192];
        int n;
        while ((n = in.read(buf)) > 0) {
            out.write(buf, 0, n);
            if (out.size() > limit) {
                discard(in);
                throw tooLarge();
            }
        }
        return out.toByteArray();
    }

    /** What a refused body may still be read before the answer: a little more than the largest accepted. */
    static final int DISCARD_LIMIT_BYTES = 8 * MAX_BODY_BYTES;

    /**
     * Reads and drops the rest of a refused request body (up to {@link #DISCARD_LIMIT_BYTES}) before
     * the 413 goes out. Closing a connection with unread bytes makes the kernel reset it, and a client
     * still sending its body then loses the 413 already on the wire ("header parser received no bytes").
     */
    private static void discard(InputStream in) throws IOException {
        byte[] buf = new byte[64 * 1024];
        long left = DISCARD_LIMIT_BYTES;
        int n;
        while (left > 0 && (n = in.read(buf, 0, (int) Math.min(buf.length, left))) > 0) {
            left -= n;
        }
    }

    private static HttpFailure tooLarge() {
        return new HttpFailure(413, "PAYLOAD_TOO_LARGE", "request body larger than " + MAX_BODY_BYTES + " bytes");
    }

    private static void send(HttpExchange ex, Reply reply) throws IOException {
        if (reply.body() instanceof MetricsBody) {
            ByteArrayOutputStream buf = new ByteArrayOutputStream();
            Metrics.write(buf);
            sendBytes(ex, reply.status(), Metrics.contentType(), buf.toByteArray());
            return;
        }
        if (reply.body() instanceof OctetStream(byte[] b)) {
            sendBytes(ex, reply.status(), "application/octet-stream", b);
            return;
        }
        if (reply.body() instanceof Redirect r) {
            ex.getResponseHeaders().set("Location", r.location());
            ex.sendResponseHeaders(reply.status(), -1);
            return;
        }
        if (reply.body() instanceof UiFile(StaticUi.File f, boolean notModified)) {
            var h = ex.getResponseHeaders();
            // revalidate every load (cheap: 304 on the ETag), so a node upgrade never leaves stale modules running
            h.set("Cache-Control", "no-cache");
            h.set("ETag", f.etag());
            h.set("X-Content-Type-Options", "nosniff");
            h.set("Content-Security-Policy", StaticUi.CONTENT_SECURITY_POLICY);
            h.set("Referrer-Policy", "no-referrer");
            if (notModified || ex.getRequestMethod().equals("HEAD")) {
                h.set("Content-Type", f.contentType());
                ex.sendResponseHeaders(notModified ? 304 : 200, -1);
                return;
            }
            sendBytes(ex, 200, f.contentType(), f.bytes());
            return;
        }
        if (reply.status() == 204 || reply.body() == null) {
            ex.sendResponseHeaders(reply.status(), -1);
            return;
        }
        byte[] bytes = reply.body() instanceof HttpErrors.Problem p ? p.body() : JSON.writeValueAsBytes(reply.body());
        sendBytes(ex, reply.status(), "application/json", bytes);
    }

    private static void sendBytes(HttpExchange ex, int status, String contentType, byte[] bytes) throws IOException {
        ex.getResponseHeaders().set("Content-Type", contentType);
        ex.sendResponseHeaders(status, bytes.length);
        try (OutputStream os = ex.getResponseBody()) {
            os.write(bytes);
        }
    }

    static String utf8(byte[] b) {
        return new String(b, StandardCharsets.UTF_8);
    }
}
