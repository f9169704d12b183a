package io.ballast.replication.wire;

import io.ballast.common.ErrorCode;
import io.ballast.replication.ReplicaNetwork;
import io.ballast.replication.ReplicaReply;
import io.ballast.replication.ReplicaRequest;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.nio.channels.SocketChannel;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * {@link ReplicaNetwork} over TCP to other nodes' {@link ReplicaServer}s: one connection per
 * destination node, opened on first use and again after a failure.
 *
 * <p>{@link #send} only queues: a writer thread per connection drains the queue, encodes every
 * request it finds into one buffer and writes it in one go (TCP_NODELAY), so many requests are in
 * flight and a busy stream costs few syscalls. A reader thread decodes replies and hands them to
 * the sink, in order. Replies come back in request order (the server's lane), which is checked.
 *
 * <p>When a connection fails (connect timeout {@value #CONNECT_TIMEOUT_MS} ms, refused handshake,
 * reset, malformed reply), every request queued or in flight on it is answered
 * {@link ReplicaReply.Failed} UNAVAILABLE exactly once; the next send opens a new connection, except
 * within {@value #RETRY_BACKOFF_MS} ms of a failed connect, when it fails at once.
 */
public final class TcpReplicaNetwork implements ReplicaNetwork, AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(TcpReplicaNetwork.class);

    public static final int CONNECT_TIMEOUT_MS = 1_000;
    public static final long HANDSHAKE_TIMEOUT_MS = 5_000;
    /** After a failed connect, sends to that node fail at once for this long (no connect storm). */
    public static final long RETRY_BACKOFF_MS = 100;
    private static final ScheduledExecutorService TIMERS = Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "ballast-replication-client-timer");
        t.setDaemon(true);
        return t;
    });

    private final String localNodeId;
    private final String clusterId;
    private final String token;
    private final Function<String, InetSocketAddress> addressOfNode;
    private final ReplySink sink;
    private final ConcurrentHashMap<String, Connection> connections = new ConcurrentHashMap<>();
    /** Until {@code untilNs}, sends to the node fail with {@code reason} without a connect attempt. */
    private record Backoff(long untilNs, String reason) {}

    private final ConcurrentHashMap<String, Backoff> backoff = new ConcurrentHashMap<>();
    /**
     * Nodes whose connection broke with no request outstanding: the engine has not heard of it, so
     * the next request fails instead of silently reconnecting (the replica may have restarted and
     * lost writes it had not flushed; the engine must treat it as failed).
     */
    private final java.util.Set<String> lostUnreported = ConcurrentHashMap.newKeySet();
    private static final long WARN_EVERY_MS = 10_000;
    private final ConcurrentHashMap<String, Long> lastWarnAtMs = new ConcurrentHashMap<>();
    private volatile boolean closed;
    private final WireSecurity security;

    /**
     * @param localNodeId this node's id, presented to servers (they check it is a cluster member)
     * @param clusterId the cluster's id
     * @param token the cluster token the handshake proof is made with (it is not sent)
     * @param addressOfNode the replication address of a node id (asked on every connect, so a moved
     *     node is found again); null when unknown
     * @param sink where replies (and transport failures) go
     */
    public TcpReplicaNetwork(String localNodeId, String clusterId, String token,
            Function<String, InetSocketAddress> addressOfNode, ReplySink sink) {
        this(localNodeId, clusterId, token, addressOfNode, sink, null);
    }

    /**
     * @param security mutual TLS before the first frame (null: plaintext): the server must present the
     *     certificate of the node it was asked to reach, from the cluster CA, or nothing is sent to it
     */
    public TcpReplicaNetwork(String localNodeId, String clusterId, String token,
            Function<String, InetSocketAddress> addressOfNode, ReplySink sink, WireSecurity security) {
        this.security = security;
        this.localNodeId = Objects.requireNonNull(localNodeId);
        this.clusterId = Objects.requireNonNull(clusterId);
        if (token == null || token.isEmpty()) {
            throw new IllegalArgumentException("the replication client needs a non-empty cluster token");
        }
        this.token = token;
        this.addressOfNode = Objects.requireNonNull(addressOfNode);
        this.sink = Objects.requireNonNull(sink);
    }

    @Override
    public void send(String nodeId, ReplicaRequest request) {
        for (;;) {
            if (closed) {
                ReplicaRequest.release(request);
                failLater(nodeId, List.of(request.requestId()), "the replication transport is closed");
                return;
            }
            Connection c = connections.get(nodeId);
            if (c == null && lostUnreported.remove(nodeId)) {
                ReplicaRequest.release(request);
                failLater(nodeId, List.of(request.requestId()), "the connection to " + nodeId
                        + " was lost since the last request (the replica may have restarted)");
                return;
            }
            if (c == null) {
                Backoff b = backoff.get(nodeId);
                if (b != null && System.nanoTime() - b.untilNs() < 0) {
                    ReplicaRequest.release(request);
                    failLater(nodeId, List.of(request.requestId()), b.reason() + " (moments ago; retrying shortly)");
                    return;
                }
                Connection fresh = new Connection(nodeId);
                c = connections.putIfAbsent(nodeId, fresh);
                if (c == null) {
                    fresh.enqueue(request); // before start: a fast failure must still answer it
                    fresh.start();
                    return;
                }
            }
            if (c.enqueue(request)) {
                return;
            }
            connections.remove(nodeId, c); // died meanwhile: retry on a new one
        }
    }

    /** Drops the connection to a node (its outstanding requests fail UNAVAILABLE); the next send reconnects. */
    public void disconnect(String nodeId) {
        Connection c = connections.get(nodeId);
        if (c != null) {
            c.fail("disconnected on request", null);
        }
    }

    /** Nodes with an open or opening connection. */
    public java.util.Set<String> connectedNodes() {
        return java.util.Set.copyOf(connections.keySet());
    }

    @Override
    public void close() {
        closed = true;
        for (Connection c : connections.values()) {
            c.fail("the replication transport is closed", null);
        }
    }

    /** Failures found on the caller's thread are delivered from another, so the engine never re-enters itself. */
    private void failLater(String nodeId, List<Long> ids, String reason) {
        Thread.ofVirtual().name("ballast-replication-fail").start(() -> deliverFailures(nodeId, ids, reason));
    }

    private void deliverFailures(String nodeId, List<Long> ids, String reason) {
        WireMetrics.CLIENT_UNAVAILABLE.inc(ids.size());
        for (long id : ids) {
            try {
                sink.onReply(nodeId, new ReplicaReply.Failed(id, ErrorCode.UNAVAILABLE,
                        "replica on node " + nodeId + " unavailable: " + reason, -1));
            } catch (RuntimeException e) {
                log.atError().setMessage("reply sink failed").setCause(e).log();
            }
        }
    }

    /** Request ids in send order: what the next replies must answer. A growable ring, no boxing. */
    private static final class IdRing {
        private long[] ids = new long[64];
        private int head;
        private int size;

        void add(long id) {
            if (size == ids.length) {
                long[] bigger = new long[ids.length * 2];
                for (int i = 0; i < size; i++) {
                    bigger[i] = ids[(head + i) & (ids.length - 1)];
                }
                ids = bigger;
                head = 0;
            }
            ids[(head + size) & (ids.length - 1)] = id;
            size++;
        }

        boolean isEmpty() {
            return size == 0;
        }

        long peek() {
            return ids[head];
        }

        long poll() {
            long id = ids[head];
            head = (head + 1) & (ids.length - 1);
            size--;
            return id;
        }

        void drainTo(List<Long> out) {
            while (size > 0) {
                out.add(poll());
            }
        }
    }

    /** One connection to one node: a queue, a writer thread and a reader thread. */
    private final class Connection {
        private final String nodeId;
        private final ReentrantLock lock = new ReentrantLock();
        private final Condition work = lock.newCondition();
        /** Accepted by send, not yet handed to the writer. */
        private final ArrayDeque<ReplicaRequest> pending = new ArrayDeque<>();
        /** Written (or being written) and not yet answered, in order. */
        private final IdRing inflight = new IdRing();
        /** Per request in {@code inflight}, the longest frame its reply may be (WireFormat.maxReplyFrameBytes). */
        private final IdRing replyLimits = new IdRing();
        private boolean writerWaiting;
        private boolean dead;
        private volatile SocketChannel ch;

        Connection(String nodeId) {
            this.nodeId = nodeId;
        }

        void start() {
            Thread.ofVirtual().name("ballast-replication-writer-" + nodeId).start(this::run);
        }

        boolean enqueue(ReplicaRequest r) {
            lock.lock();
            try {
                if (dead) {
                    return false;
                }
                pending.add(r);
                if (writerWaiting) {
                    work.signal();
                }
                return true;
            } finally {
                lock.unlock();
            }
        }

        private void run() {
            FrameWriter writer = null;
            FrameReader reader = null;
            try {
                InetSocketAddress address;
                try {
                    address = addressOfNode.apply(nodeId);
                } catch (RuntimeException e) {
                    throw new ConnectFailure("cannot resolve the replication address of node " + nodeId + ": " + e);
                }
                if (address == null) {
                    throw new ConnectFailure("no replication address known for node " + nodeId);
                }
                SocketChannel channel = SocketChannel.open();
                ch = channel;
                if (isDead()) {
                    closeChannel();
                    return;
                }
                try {
                    channel.socket().connect(address, CONNECT_TIMEOUT_MS);
                } catch (IOException e) {
                    throw new ConnectFailure("cannot connect to " + address + ": " + e.getMessage());
                }
                channel.setOption(StandardSocketOptions.TCP_NODELAY, true);
                java.nio.channels.ByteChannel io = channel;
                if (security != null) {
                    ScheduledFuture<?> deadline = TIMERS.schedule(this::closeChannel, HANDSHAKE_TIMEOUT_MS, TimeUnit.MILLISECONDS);
                    try {
                        io = security.connect(channel, nodeId).channel();
                    } catch (IOException e) {
                        closeChannel();
                        throw new ConnectFailure("TLS handshake with node " + nodeId + " at " + address + " failed: "
                                + e.getMessage() + " (not a member with a certificate from this cluster's CA?)");
                    } finally {
                        deadline.cancel(false);
                    }
                }
                writer = new FrameWriter(io);
                reader = new FrameReader(io);
                handshake(channel, reader, writer);
                if (closed) { // close() ran while this connection was being opened
                    fail("the replication transport is closed", null);
                    return;
                }
                reader.upgrade();
                reader.limitNextFrame(this::nextReplyLimit);
                writer.upgrade();
                WireMetrics.CLIENT_CONNECTIONS.labelValues("ok").inc();
                backoff.remove(nodeId);
                FrameReader r = reader;
                Thread.ofVirtual().name("ballast-replication-reader-" + nodeId).start(() -> readLoop(r));
                writeLoop(writer);
            } catch (ConnectFailure e) {
                WireMetrics.CLIENT_CONNECTIONS.labelValues("failed").inc();
                backoff.put(nodeId, new Backoff(System.nanoTime() + RETRY_BACKOFF_MS * 1_000_000, e.getMessage()));
                fail(e.getMessage(), null);
            } catch (WireProtocolException e) {
                fail("protocol error: " + e.getMessage(), e);
            } catch (IOException e) {
                fail("connection lost: " + e.getMessage(), null);
            } catch (RuntimeException e) {
                fail("writer failed: " + e, e);
            } finally {
                if (writer != null) {
                    WireMetrics.CLIENT_SENT_BYTES.inc(writer.takeBytesWritten());
                }
            }
        }

        private void handshake(SocketChannel channel, FrameReader reader, FrameWriter writer) throws IOException {
            ScheduledFuture<?> deadline = TIMERS.schedule(() -> fail("handshake timed out", null),
                    HANDSHAKE_TIMEOUT_MS, TimeUnit.MILLISECONDS);
            try {
                reader.readPreamble();
                WireMessage first = reader.next();
                byte[] nonce = switch (first) {
                    case WireMessage.Challenge c -> c.nonce();
                    case WireMessage.ConnectionError e -> throw new ConnectFailure("refused by node " + nodeId + ": "
                            + e.reason());
                    case null -> throw new ConnectFailure("node " + nodeId + " closed the connection during the handshake");
                    default -> throw new WireProtocolException("expected Challenge, got " + first.getClass().getSimpleName());
                };
                writer.writePreamble();
                writer.write(new WireMessage.Hello(clusterId, localNodeId, ClusterAuth.proof(token, nonce, localNodeId)));
                writer.flush();
                WireMessage answer = reader.next();
                switch (answer) {
                    case WireMessage.Welcome w -> {}
                    case WireMessage.ConnectionError e -> throw new ConnectFailure("refused by node " + nodeId + ": "
                            + e.reason());
                    case null -> throw new ConnectFailure("node " + nodeId + " closed the connection during the handshake");
                    default -> throw new WireProtocolException("expected Welcome, got " + answer.getClass().getSimpleName());
                }
            } finally {
                deadline.cancel(false);
            }
        }

        private void writeLoop(FrameWriter writer) throws IOException {
            List<ReplicaRequest> batch = new ArrayList<>();
            for (;;) {
                lock.lock();
                try {
                    while (pending.isEmpty() && !dead) {
                        writerWaiting = true;
                        work.awaitUninterruptibly();
                        writerWaiting = false;
                    }
                    if (dead) {
                        return;
                    }
                    for (ReplicaRequest r; (r = pending.poll()) != null; ) {
                        inflight.add(r.requestId()); // before it is written: its reply may come at once
                        replyLimits.add(WireFormat.maxReplyFrameBytes(r));
                        batch.add(r);
                    }
                } finally {
                    lock.unlock();
                }
                try {
                    for (int i = 0; i < batch.size(); i++) {
                        writer.write(batch.get(i));
                    }
                } finally {
                    // Encoded into the frame buffer (or failed with the connection): the payloads' refs go back.
                    for (int i = 0; i < batch.size(); i++) {
                        ReplicaRequest.release(batch.get(i));
                    }
                    batch.clear();
                }
                writer.flush();
                WireMetrics.CLIENT_SENT_BYTES.inc(writer.takeBytesWritten());
            }
        }

        private void readLoop(FrameReader reader) {
            try {
                for (;;) {
                    WireMessage m = reader.next();
                    switch (m) {
                        case null -> {
                            fail("node " + nodeId + " closed the connection", null);
                            return;
                        }
                        case WireMessage.Reply(ReplicaReply reply) -> {
                            lock.lock();
                            try {
                                if (dead) {
                                    return; // its outstanding requests were failed already
                                }
                                if (inflight.isEmpty() || inflight.peek() != reply.requestId()) {
                                    // Left on the ring: fail() answers it with the rest.
                                    throw new WireProtocolException("reply for request " + reply.requestId()
                                            + (inflight.isEmpty() ? " with none outstanding"
                                                    : " where " + inflight.peek() + " was next"));
                                }
                                inflight.poll();
                                replyLimits.poll();
                            } finally {
                                lock.unlock();
                            }
                            boolean more = reader.hasBufferedFrame();
                            if (!more) {
                                WireMetrics.CLIENT_RECEIVED_BYTES.inc(reader.takeBytesRead());
                            }
                            sink.onReply(nodeId, reply, more);
                        }
                        case WireMessage.ConnectionError e -> {
                            fail("node " + nodeId + " closed the connection: " + e.reason(), null);
                            return;
                        }
                        default -> throw new WireProtocolException("unexpected " + m.getClass().getSimpleName()
                                + " frame from a replica");
                    }
                }
            } catch (WireProtocolException e) {
                fail("protocol error: " + e.getMessage(), e);
            } catch (IOException e) {
                fail("connection lost: " + e.getMessage(), null);
            } catch (RuntimeException e) {
                fail("reader failed: " + e, e);
            } finally {
                WireMetrics.CLIENT_RECEIVED_BYTES.inc(reader.takeBytesRead());
            }
        }

        /** The longest frame the next reply may be: its request's bound, a control frame when none is outstanding. */
        private int nextReplyLimit() {
            lock.lock();
            try {
                int body = replyLimits.isEmpty() ? WireFormat.MAX_CONTROL_FRAME_BYTES : (int) replyLimits.peek();
                return body + WireFormat.LENGTH_BYTES;
            } finally {
                lock.unlock();
            }
        }

        private boolean isDead() {
            lock.lock();
            try {
                return dead;
            } finally {
                lock.unlock();
            }
        }

        /** Ends the connection once: every request on it is answered UNAVAILABLE, here, exactly once. */
        void fail(String reason, Throwable cause) {
            List<Long> ids = new ArrayList<>();
            lock.lock();
            try {
                if (dead) {
                    return;
                }
                dead = true;
                inflight.drainTo(ids);
                replyLimits.drainTo(new ArrayList<>());
                for (ReplicaRequest r; (r = pending.poll()) != null; ) {
                    ids.add(r.requestId());
                    ReplicaRequest.release(r);
                }
                work.signalAll();
            } finally {
                lock.unlock();
            }
            connections.remove(nodeId, this);
            if (ids.isEmpty() && !closed) {
                lostUnreported.add(nodeId);
            }
            closeChannel();
            var event = closed || !warnNow(nodeId) ? log.atDebug() : log.atWarn();
            event.setMessage("replication connection failed")
                    .addKeyValue("node", nodeId)
                    .addKeyValue("reason", reason)
                    .addKeyValue("failedRequests", ids.size())
                    .setCause(cause)
                    .log();
            deliverFailures(nodeId, ids, reason);
        }

        private void closeChannel() {
            SocketChannel c = ch;
            if (c != null) {
                try {
                    c.close();
                } catch (IOException ignored) {
                    // closing
                }
            }
        }
    }

    /**
     * At most one warning per node every {@value #WARN_EVERY_MS} ms: engines probe an unreachable node
     * several times a second, and each failed connect would otherwise log one.
     */
    private boolean warnNow(String nodeId) {
        long nowMs = System.nanoTime() / 1_000_000;
        Long last = lastWarnAtMs.get(nodeId);
        if (last != null && nowMs - last < WARN_EVERY_MS) {
            return false;
        }
        lastWarnAtMs.put(nodeId, nowMs);
        return true;
    }

    /** A connection that never got to carry requests (the node is unreachable or refused us). */
    private static final class ConnectFailure extends IOException {
        ConnectFailure(String message) {
            super(message);
        }
    }
}
