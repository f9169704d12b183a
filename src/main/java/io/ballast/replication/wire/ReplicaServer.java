package io.ballast.replication.wire;

import io.ballast.common.ErrorCode;
import io.ballast.replication.ReplicaLogic;
import io.ballast.replication.ReplicaReply;
import io.ballast.replication.ReplicaRequest;
import io.ballast.replication.VolumeLanes;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.StandardSocketOptions;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.LongAdder;
import java.util.function.Predicate;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A node's replication port: accepts engine connections, checks who they are (challenge-response
 * over the cluster token, then cluster membership), and answers their requests through
 * {@link ReplicaLogic}.
 *
 * <p>One virtual thread per connection is the connection's lane: it decodes a request, applies it,
 * encodes the reply, and takes the next, so requests are applied strictly in arrival order. Across
 * connections, {@link VolumeLanes} applies one request of a volume at a time. Replies are batched:
 * the socket is flushed only when no further whole request is already buffered.
 *
 * <p>Bad input (docs/replication.md, "Wire format"): a refused handshake or a malformed frame gets a
 * ConnectionError frame naming the reason, is logged and counted, and the connection is closed.
 * A malformed frame is never applied; other connections are not affected.
 */
public final class ReplicaServer implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(ReplicaServer.class);

    /** How long a peer has to complete the handshake before it is dropped. */
    public static final long HANDSHAKE_TIMEOUT_MS = 5_000;
    private static final ScheduledExecutorService TIMERS = Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "ballast-replication-timer");
        t.setDaemon(true);
        return t;
    });

    /** Counters of one server (the Prometheus ones add up every server of the JVM). */
    public record Stats(long requests, long bytesIn, long bytesOut, long refusedConnections, long fencedRequests,
            int openConnections) {}

    private final String nodeId;
    private final WireSecurity security;
    private final String clusterId;
    private final String token;
    private final Predicate<String> isMember;
    private final VolumeLanes lanes;
    private final ServerSocketChannel listener;
    private final InetSocketAddress boundAddress;
    private final Set<SocketChannel> open = ConcurrentHashMap.newKeySet();
    private final Thread acceptor;
    private volatile boolean closed;

    private final LongAdder requests = new LongAdder();
    private final LongAdder bytesIn = new LongAdder();
    private final LongAdder bytesOut = new LongAdder();
    private final LongAdder refused = new LongAdder();
    private final LongAdder fenced = new LongAdder();

    /**
     * Binds {@code bindAddress} (port 0: an ephemeral port, see {@link #address()}) and starts
     * accepting.
     *
     * @param nodeId this node's id, sent to clients in the Welcome frame
     * @param clusterId the cluster clients must claim
     * @param token the cluster token their proof must be made with (never sent)
     * @param isMember whether a node id is a current member of the cluster (asked per connection)
     */
    public ReplicaServer(InetSocketAddress bindAddress, String nodeId, String clusterId, String token,
            Predicate<String> isMember, ReplicaLogic logic) {
        this(bindAddress, nodeId, clusterId, token, isMember, new VolumeLanes(logic));
    }

    /**
     * As above, sharing {@code lanes} with the node's in-process replica channel, so requests of a
     * volume are applied one at a time whichever way they arrive.
     */
    public ReplicaServer(InetSocketAddress bindAddress, String nodeId, String clusterId, String token,
            Predicate<String> isMember, VolumeLanes lanes) {
        this(bindAddress, nodeId, clusterId, token, isMember, lanes, null);
    }

    /**
     * @param security mutual TLS before the first frame (null: plaintext, --insecure). With it a peer
     *     without a cluster certificate is refused at the handshake, and the Hello must name the node
     *     its certificate names.
     */
    public ReplicaServer(InetSocketAddress bindAddress, String nodeId, String clusterId, String token,
            Predicate<String> isMember, VolumeLanes lanes, WireSecurity security) {
        this.security = security;
        this.nodeId = Objects.requireNonNull(nodeId);
        this.clusterId = Objects.requireNonNull(clusterId);
        if (token == null || token.isEmpty()) {
            throw new IllegalArgumentException("the replication server needs a non-empty cluster token");
        }
        this.token = token;
        this.isMember = Objects.requireNonNull(isMember);
        this.lanes = Objects.requireNonNull(lanes);
        try {
            listener = ServerSocketChannel.open();
            listener.setOption(StandardSocketOptions.SO_REUSEADDR, true);
            listener.bind(bindAddress, 128);
            boundAddress = (InetSocketAddress) listener.getLocalAddress();
        } catch (IOException e) {
            throw new io.ballast.common.BallastException(ErrorCode.UNAVAILABLE,
                    "cannot listen for replication on " + bindAddress + ": " + e.getMessage(), e);
        }
        acceptor = Thread.ofVirtual().name("ballast-replication-accept").start(this::acceptLoop);
        log.atInfo().setMessage("replication server listening")
                .addKeyValue("node", nodeId)
                .addKeyValue("address", address().toString())
                .log();
    }

    /** The bound address (with the actual port when bound to port 0). */
    public InetSocketAddress address() {
        return boundAddress;
    }

    public int port() {
        return address().getPort();
    }

    public Stats stats() {
        return new Stats(requests.sum(), bytesIn.sum(), bytesOut.sum(), refused.sum(), fenced.sum(), open.size());
    }

    private void acceptLoop() {
        while (!closed) {
            SocketChannel ch;
            try {
                ch = listener.accept();
            } catch (IOException e) {
                if (!closed) {
                    log.atError().setMessage("replication accept failed").setCause(e).log();
                }
                return;
            }
            open.add(ch);
            WireMetrics.SERVER_CONNECTIONS_OPEN.inc();
            Thread.ofVirtual().name("ballast-replication-conn").start(() -> serve(ch));
        }
    }

    /** Why a connection is being refused or closed, for the log, the metric and the peer. */
    private record Refusal(String kind, String reason) {}

    private void serve(SocketChannel ch) {
        String remote = remoteOf(ch);
        java.nio.channels.ByteChannel io = ch;
        String certifiedPeer = null;
        if (security != null) {
            ScheduledFuture<?> deadline = TIMERS.schedule(() -> closeQuietly(ch), HANDSHAKE_TIMEOUT_MS, TimeUnit.MILLISECONDS);
            try {
                WireSecurity.Secured s = security.accept(ch);
                io = s.channel();
                certifiedPeer = s.peerNodeId();
            } catch (IOException | RuntimeException e) {
                refused.increment();
                WireMetrics.REFUSED_CREDENTIALS.inc();
                log.atWarn().setMessage("replication connection refused")
                        .addKeyValue("reason", "TLS handshake failed: " + e.getMessage())
                        .addKeyValue("kind", "tls").addKeyValue("remote", remote).log();
                closeQuietly(ch);
                return;
            } finally {
                deadline.cancel(false);
            }
        }
        FrameReader reader = new FrameReader(io);
        FrameWriter writer = new FrameWriter(io);
        String peer = null;
        Refusal refusal = null;
        try {
            ch.setOption(StandardSocketOptions.TCP_NODELAY, true);
            peer = handshake(ch, reader, writer, certifiedPeer);
            if (peer == null) {
                return; // refused and logged
            }
            reader.upgrade();
            writer.upgrade();
            log.atInfo().setMessage("replication connection accepted")
                    .addKeyValue("peer", peer).addKeyValue("remote", remote).log();
            refusal = lane(reader, writer);
        } catch (WireProtocolException e) {
            refusal = new Refusal("protocol", e.getMessage());
        } catch (ClosedChannelException e) {
            // closed by close() or the handshake timer
        } catch (RuntimeException e) {
            log.atError().setMessage("replication connection failed unexpectedly; closing it")
                    .addKeyValue("peer", peer).addKeyValue("remote", remote).setCause(e).log();
        } catch (IOException e) {
            if (!closed) {
                log.atInfo().setMessage("replication connection lost")
                        .addKeyValue("peer", peer).addKeyValue("remote", remote)
                        .addKeyValue("error", e.getMessage()).log();
            }
        } finally {
            if (refusal != null) {
                refuse(ch, writer, peer, remote, refusal);
            }
            reportBytes(reader, writer);
            closeQuietly(ch);
        }
    }

    /** Returns the peer's node id, or null after refusing it. */
    private String handshake(SocketChannel ch, FrameReader reader, FrameWriter writer, String certifiedPeer) throws IOException {
        ScheduledFuture<?> deadline = TIMERS.schedule(() -> closeQuietly(ch), HANDSHAKE_TIMEOUT_MS,
                TimeUnit.MILLISECONDS);
        try {
            byte[] nonce = ClusterAuth.nonce();
            writer.writePreamble();
            writer.write(new WireMessage.Challenge(nonce));
            writer.flush();
            reader.readPreamble();
            WireMessage first = reader.next();
            if (!(first instanceof WireMessage.Hello hello)) {
                throw new WireProtocolException(first == null ? "connection closed before Hello"
                        : "expected Hello, got " + first.getClass().getSimpleName());
            }
            Refusal refusal = null;
            if (!clusterId.equals(hello.clusterId()) || !ClusterAuth.verify(token, nonce, hello.nodeId(), hello.proof())) {
                refusal = new Refusal("credentials", "bad cluster credentials");
            } else if (security != null && !hello.nodeId().equals(certifiedPeer)) {
                refusal = new Refusal("credentials", "the Hello names node " + hello.nodeId() + " but the certificate names "
                        + certifiedPeer);
            } else {
                refusal = checkMember(hello.nodeId());
            }
            if (refusal != null) {
                refuse(ch, writer, hello.nodeId(), remoteOf(ch), refusal);
                return null;
            }
            writer.write(new WireMessage.Welcome(nodeId));
            writer.flush();
            return hello.nodeId();
        } finally {
            deadline.cancel(false);
        }
    }

    private Refusal checkMember(String peerNodeId) {
        try {
            return isMember.test(peerNodeId) ? null
                    : new Refusal("membership", "not a cluster member: " + peerNodeId);
        } catch (RuntimeException e) {
            // e.g. the control plane is not ready yet: refuse now, the client retries later
            return new Refusal("membership", "cluster membership of " + peerNodeId + " cannot be checked now: "
                    + e.getMessage());
        }
    }

    /**
     * Serves requests in arrival order until the peer closes; returns why it stopped if not that.
     * Replies go out in request order; a write running behind the lane ({@link VolumeLanes#submit})
     * holds back the replies after it until it is done, and its own reply is sent by whichever thread
     * finishes it.
     */
    private Refusal lane(FrameReader reader, FrameWriter writer) throws IOException {
        ReplyQueue replies = new ReplyQueue(writer);
        try {
            for (;;) {
                WireMessage m = reader.next();
                if (m == null) {
                    return null;
                }
                if (!(m instanceof WireMessage.Request(ReplicaRequest request))) {
                    replies.awaitAll();
                    return new Refusal("protocol", "unexpected " + m.getClass().getSimpleName()
                            + " frame after the handshake");
                }
                requests.increment();
                WireMetrics.SERVER_REQUESTS.inc();
                boolean more = reader.hasBufferedFrame();
                replies.add(request, apply(request), !more);
                if (!more) {
                    reportBytes(reader.takeBytesRead(), replies.takeBytesWritten());
                }
            }
        } catch (WireProtocolException e) {
            replies.awaitAll();
            return new Refusal("protocol", e.getMessage());
        }
    }

    /**
     * The replies of one connection, sent in request order. The connection's thread adds each
     * request's (maybe pending) reply; whichever thread completes the reply at the head sends it and
     * every completed one after it. The writer is used under this queue's lock only.
     */
    private final class ReplyQueue {
        private final FrameWriter writer;
        private final java.util.ArrayDeque<Pending> pending = new java.util.ArrayDeque<>();
        private final java.util.concurrent.locks.ReentrantLock lock = new java.util.concurrent.locks.ReentrantLock();
        private final java.util.concurrent.locks.Condition empty = lock.newCondition();
        /** A send failed (the connection is gone): later replies are dropped. */
        private IOException broken;

        private record Pending(ReplicaRequest request, CompletableFuture<ReplicaReply> reply) {}

        ReplyQueue(FrameWriter writer) {
            this.writer = writer;
        }

        /** Connection thread: queues the reply and sends what is ready, flushing when {@code flush}. */
        void add(ReplicaRequest request, CompletableFuture<ReplicaReply> reply, boolean flush) throws IOException {
            lock.lock();
            try {
                pending.add(new Pending(request, reply));
                sendReady(flush);
                if (broken != null) {
                    throw broken;
                }
            } finally {
                lock.unlock();
            }
            if (!reply.isDone()) {
                reply.whenComplete((r, t) -> {
                    lock.lock();
                    try {
                        sendReady(true);
                    } catch (IOException e) {
                        // recorded in broken; the connection thread sees it on its next request or read
                    } finally {
                        lock.unlock();
                    }
                });
            }
        }

        private void sendReady(boolean flush) throws IOException {
            boolean sent = false;
            while (!pending.isEmpty() && pending.peek().reply().isDone()) {
                Pending p = pending.poll();
                if (broken == null) {
                    try {
                        writer.write(toReply(p.request(), p.reply()));
                        sent = true;
                    } catch (IOException e) {
                        broken = e;
                    }
                }
            }
            if (pending.isEmpty()) {
                empty.signalAll();
            }
            if (sent && flush && broken == null) {
                try {
                    writer.flush();
                } catch (IOException e) {
                    broken = e;
                }
            }
            if (broken != null) {
                throw broken;
            }
        }

        /** Waits until every queued reply is sent (or dropped), so nothing else is written beside them. */
        void awaitAll() {
            lock.lock();
            try {
                while (!pending.isEmpty()) {
                    empty.awaitUninterruptibly();
                }
            } finally {
                lock.unlock();
            }
        }

        long takeBytesWritten() {
            lock.lock();
            try {
                return writer.takeBytesWritten();
            } finally {
                lock.unlock();
            }
        }
    }

    /** Adds the bytes moved since the last report to the counters (per batch, not per frame). */
    private void reportBytes(FrameReader reader, FrameWriter writer) {
        reportBytes(reader.takeBytesRead(), writer.takeBytesWritten());
    }

    private void reportBytes(long in, long out) {
        bytesIn.add(in);
        bytesOut.add(out);
        WireMetrics.SERVER_RECEIVED_BYTES.inc(in);
        WireMetrics.SERVER_SENT_BYTES.inc(out);
    }

    /** Hands the request to its lane; the reply may come later (see {@link VolumeLanes#submit}). */
    private CompletableFuture<ReplicaReply> apply(ReplicaRequest request) {
        // Replies must fit a frame: refuse what could not be answered, rather than fail mid-reply.
        if (request instanceof ReplicaRequest.Read r && r.lengthBytes() > WireFormat.MAX_PAYLOAD_BYTES) {
            return CompletableFuture.completedFuture(new ReplicaReply.Failed(r.requestId(), ErrorCode.INVALID_ARGUMENT, "read of " + r.lengthBytes()
                    + " bytes exceeds the replication limit of " + WireFormat.MAX_PAYLOAD_BYTES + " per request", -1));
        }
        if (request instanceof ReplicaRequest.RegionDigests d && d.regionCount() > WireFormat.MAX_PAYLOAD_BYTES / 8) {
            return CompletableFuture.completedFuture(new ReplicaReply.Failed(d.requestId(), ErrorCode.INVALID_ARGUMENT,
                    "digests of " + d.regionCount() + " regions exceed the replication limit of "
                    + WireFormat.MAX_PAYLOAD_BYTES / 8 + " per request", -1));
        }
        return lanes.submit(request);
    }

    /** The reply to send for a completed request: what the lane answered, or its failure mapped to the wire. */
    private ReplicaReply toReply(ReplicaRequest request, CompletableFuture<ReplicaReply> done) {
        ReplicaReply reply;
        try {
            reply = done.join();
        } catch (java.util.concurrent.CompletionException wrapped) {
            reply = failureReply(request, wrapped.getCause());
        }
        if (reply instanceof ReplicaReply.Fenced f) {
            fenced.increment();
            WireMetrics.SERVER_FENCED_REQUESTS.inc();
            log.atInfo().setMessage("request from a superseded engine fenced")
                    .addKeyValue("volume", request.volumeUuid())
                    .addKeyValue("epoch", request.epoch())
                    .addKeyValue("epochFloor", f.epochFloor())
                    .log();
        }
        return reply;
    }

    private ReplicaReply failureReply(ReplicaRequest request, Throwable e) {
        if (e instanceof io.ballast.common.BallastException be) {
            // e.g. the volume's files cannot be opened: a reply, not a dead lane
            return new ReplicaReply.Failed(request.requestId(), be.code(), be.getMessage(), -1);
        }
        log.atError().setMessage("replica request failed unexpectedly")
                .addKeyValue("volume", request.volumeUuid())
                .addKeyValue("request", request.getClass().getSimpleName())
                .setCause(e).log();
        return new ReplicaReply.Failed(request.requestId(), ErrorCode.INTERNAL, "replica failed: " + e, -1);
    }

    /** Sends the reason (after any replies already produced), logs, counts. The caller closes. */
    private void refuse(SocketChannel ch, FrameWriter writer, String peer, String remote, Refusal refusal) {
        refused.increment();
        switch (refusal.kind()) {
            case "credentials" -> WireMetrics.REFUSED_CREDENTIALS.inc();
            case "membership" -> WireMetrics.REFUSED_MEMBERSHIP.inc();
            default -> WireMetrics.REFUSED_PROTOCOL.inc();
        }
        log.atWarn().setMessage("replication connection refused")
                .addKeyValue("reason", refusal.reason())
                .addKeyValue("kind", refusal.kind())
                .addKeyValue("peer", peer)
                .addKeyValue("remote", remote)
                .log();
        try {
            writer.write(new WireMessage.ConnectionError(0, refusal.reason()));
            writer.flush();
            ch.shutdownOutput();
            drainBriefly(ch);
        } catch (IOException | RuntimeException e) {
            // the peer may be gone already; the refusal is logged
        }
    }

    /**
     * Closing with unread input makes the kernel send a reset, which can destroy the error frame
     * before the peer reads it: read and discard what the peer still sends, for a short while.
     */
    private void drainBriefly(SocketChannel ch) throws IOException {
        ScheduledFuture<?> stop = TIMERS.schedule(() -> closeQuietly(ch), 1000, TimeUnit.MILLISECONDS);
        try {
            java.nio.ByteBuffer sink = java.nio.ByteBuffer.allocate(64 * 1024);
            long budget = 64L << 20;
            while (budget > 0 && ch.read(sink.clear()) >= 0) {
                budget -= sink.position();
            }
        } catch (ClosedChannelException e) {
            // the timer ended it
        } finally {
            stop.cancel(false);
        }
    }

    private static String remoteOf(SocketChannel ch) {
        try {
            SocketAddress a = ch.getRemoteAddress();
            return String.valueOf(a);
        } catch (IOException e) {
            return "?";
        }
    }

    private void closeQuietly(SocketChannel ch) {
        try {
            ch.close();
        } catch (IOException ignored) {
            // closing
        }
        if (open.remove(ch)) {
            WireMetrics.SERVER_CONNECTIONS_OPEN.dec();
        }
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            listener.close();
        } catch (IOException ignored) {
            // closing
        }
        for (SocketChannel ch : open) {
            closeQuietly(ch);
        }
        try {
            acceptor.join(1000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
