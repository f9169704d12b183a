package io.ballast.frontend.nbd;

import static io.ballast.frontend.nbd.NbdProtocol.*;

import io.ballast.common.BallastException;
import io.ballast.storage.BlockDevice;
import io.ballast.storage.Payload;
import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ByteChannel;
import java.nio.channels.GatheringByteChannel;
import java.nio.channels.SocketChannel;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Semaphore;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantLock;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One client connection: the fixed newstyle handshake, then the transmission phase. One reader
 * (the thread running {@link #run}) decodes requests. Small reads and writes it executes itself
 * ("inline"): a hand-off to another thread costs more than a page-cache read or write of a few KiB.
 * Their replies are batched and leave in one gather write just before the reader would block on
 * the socket (or when the batch is full), so a pipelined client gets many replies per syscall.
 * Large requests, flushes while other work is in flight, and every request while inline
 * execution has turned out slow (the device is waiting on a disk, say) go to a worker virtual
 * thread each, so slow requests still overlap. Replies are serialized by {@link #writeLock}, so
 * they may leave out of order.
 */
final class NbdSession implements Runnable {
    private static final Logger log = LoggerFactory.getLogger(NbdSession.class);

    /** Transmission flags we advertise for every export. */
    static final int TRANSMISSION_FLAGS = FLAG_HAS_FLAGS | FLAG_SEND_FLUSH | FLAG_SEND_FUA | FLAG_SEND_TRIM
            | FLAG_SEND_WRITE_ZEROES | FLAG_SEND_FAST_ZERO | FLAG_CAN_MULTI_CONN;
    static final int MIN_BLOCK_BYTES = 1;
    static final int PREFERRED_BLOCK_BYTES = 4096;
    private static final int SKIP_CHUNK_BYTES = 64 * 1024;
    /**
     * A client must finish option haggling within this time; otherwise a connect-and-stay-silent
     * client would hold a reader thread forever. Idle transmission is legitimate and not timed.
     */
    static final long HANDSHAKE_TIMEOUT_MS = 30_000;
    private volatile boolean handshakeDone;

    private final ExportRegistry exports;
    /** The accepted socket: closing it is how the watchdogs cut a connection, TLS or not. */
    private final ByteChannel raw;
    /** What requests are read from and replies written to: {@link #raw}, or TLS over it after STARTTLS. */
    private volatile ByteChannel channel;
    /** TLS settings, null for none; only for a TCP connection. */
    private final NbdTls tls;
    private boolean tlsActive;
    /** The engine of this connection's TLS, once STARTTLS began: an OpenSSL one holds native state until released. */
    private volatile javax.net.ssl.SSLEngine tlsEngine;
    private final String peer;
    private final NbdServerConfig config;
    private final ThreadFactory workers;
    private final SessionListener listener;
    private final boolean tcp;
    private final ReentrantLock writeLock = new ReentrantLock();
    private final Semaphore inFlight;
    /** Shared by all connections of the server. */
    private final BufferPool buffers;
    /**
     * Payload buffer bytes (in KiB, by size class) this connection may hold at once, besides the
     * request count bound: 64 requests of 32 MiB would otherwise be 2 GiB of direct memory.
     */
    static final int PAYLOAD_BUDGET_BYTES = 64 * 1024 * 1024;
    private final Semaphore payloadBudgetKib;
    /** This connection's share of the node's buffer budget. */
    private final BufferPool.Account bufferAccount = new BufferPool.Account();

    private static int budgetKib(NbdServerConfig config) {
        return Math.max(PAYLOAD_BUDGET_BYTES, BufferPool.classBytes(config.maxPayloadBytes())) / 1024;
    }
    private final ByteBuffer header = ByteBuffer.allocateDirect(REQUEST_HEADER_BYTES);
    /**
     * Read-ahead of client bytes, kept in read mode. Pipelined clients send many small requests
     * back to back; reading them in one syscall instead of two per request (header, payload)
     * matters at 4 KiB.
     */
    private final ByteBuffer inbound = ByteBuffer.allocateDirect(INBOUND_BUFFER_BYTES).flip();
    private static final int INBOUND_BUFFER_BYTES = 128 * 1024;

    /** Reads and writes up to this size may run inline on the reader. */
    static final int INLINE_MAX_BYTES = 64 * 1024;
    /** Inline execution stops when its moving average exceeds this: the device is slow, overlap wins. */
    private static final long INLINE_BUDGET_NS = 150_000;
    /** While inline execution is off, every this-many-th eligible request still runs inline to re-measure. */
    private static final int INLINE_PROBE_EVERY = 64;
    /** Replies held for one gather write at most. */
    private static final int MAX_BATCH = 32;
    private static final int MAX_BATCH_BYTES = 512 * 1024;
    /** Moving average (1/8 weight per sample) of inline execution time; reader thread only. */
    private long inlineAvgNs;
    private int inlineProbe;
    /** Replies of inline requests not yet sent, and the pool buffers to release after sending; reader only. */
    private final ByteBuffer[] batch = new ByteBuffer[MAX_BATCH];
    private final ByteBuffer[] batchRelease = new ByteBuffer[MAX_BATCH];
    private int batchCount;
    private long batchBytes;

    private boolean structuredReplies;
    private boolean noZeroes;
    private volatile boolean replyChannelBroken;
    private BlockDevice device;
    /** Export counted in the server's openConnections, set before the client learns it is in. */
    private String servingExport;
    private long sizeBytes;

    /** Server callbacks for connection accounting. */
    interface SessionListener {
        void transmissionStarted(NbdSession session, String exportName);

        void sessionEnded(NbdSession session, String exportNameOrNull);
    }

    NbdSession(ExportRegistry exports, ByteChannel channel, boolean tcp, String peer, NbdServerConfig config,
               ThreadFactory workers, BufferPool buffers, SessionListener listener) {
        this.exports = exports;
        this.raw = channel;
        this.channel = channel;
        this.tcp = tcp;
        this.tls = tcp ? config.tls() : null;
        this.peer = peer;
        this.config = config;
        this.workers = workers;
        this.listener = listener;
        this.inFlight = new Semaphore(config.maxInFlightPerConnection());
        this.buffers = buffers;
        this.payloadBudgetKib = new Semaphore(budgetKib(config));
    }

    @Override
    public void run() {
        String exportName = null;
        Thread watchdog = Thread.ofVirtual().name("nbd-handshake-timeout").start(() -> {
            try {
                Thread.sleep(HANDSHAKE_TIMEOUT_MS);
                if (!handshakeDone) {
                    log.atWarn().addKeyValue("peer", peer).log("nbd handshake timed out, closing connection");
                    closeQuietly();
                }
            } catch (InterruptedException e) {
                // handshake finished or session ended
            }
        });
        try {
            exportName = handshake();
            handshakeDone = true;
            watchdog.interrupt();
            if (exportName != null) {
                log.atInfo().addKeyValue("peer", peer).addKeyValue("export", exportName)
                        .addKeyValue("structuredReplies", structuredReplies).log("nbd client connected");
                transmission();
            }
        } catch (NbdProtocolException e) {
            log.atWarn().addKeyValue("peer", peer).addKeyValue("export", exportName)
                    .addKeyValue("error", e.getMessage()).log("nbd protocol error, closing connection");
        } catch (EOFException e) {
            log.atDebug().addKeyValue("peer", peer).log("nbd client closed the connection");
        } catch (IOException e) {
            log.atDebug().addKeyValue("peer", peer).addKeyValue("error", e.toString()).log("nbd connection I/O ended");
        } catch (RuntimeException e) {
            // e.g. the registry failing to open an export: this connection ends, nothing else.
            log.atError().setCause(e).addKeyValue("peer", peer).addKeyValue("export", exportName)
                    .log("nbd session failed, closing connection");
        } finally {
            watchdog.interrupt();
            sendBatch();
            // In-flight work completes (its replies may fail quietly) before we report the end.
            inFlight.acquireUninterruptibly(config.maxInFlightPerConnection());
            stopReplyWriter();
            closeTls();
            closeQuietly();
            // netty's OpenSSL engine locks its own calls and refuses them once freed, so a late writer fails cleanly
            io.ballast.common.TlsEngines.release(tlsEngine);
            listener.sessionEnded(this, servingExport);
            ended.countDown();
            log.atInfo().addKeyValue("peer", peer).addKeyValue("export", exportName).log("nbd client disconnected");
        }
    }

    /** System.nanoTime() when the reader began waiting on the socket for the rest of a request; 0 when not. */
    private volatile long midRequestWaitSinceNs;

    /**
     * Closes the connection when it has left a request half-sent for longer than {@code timeoutNs}
     * (called by the server's watchdog). True when it closed it.
     */
    boolean closeIfStalled(long nowNs, long timeoutNs) {
        long since = midRequestWaitSinceNs;
        long replySince = replyWaitSinceNs;
        if (since != 0 && nowNs - since >= timeoutNs) {
            log.atWarn().addKeyValue("peer", peer).addKeyValue("stalledMs", (nowNs - since) / 1_000_000)
                    .log("nbd connection closed: request left half-sent for longer than the stalled-request timeout");
        } else if (replySince != 0 && nowNs - replySince >= timeoutNs) {
            log.atWarn().addKeyValue("peer", peer).addKeyValue("stalledMs", (nowNs - replySince) / 1_000_000)
                    .log("nbd connection closed: the client read none of a reply for longer than the stalled-request timeout");
        } else {
            return false;
        }
        closeQuietly();
        return true;
    }

    /** The export this session serves once in transmission (null before). */
    String servingExport() {
        return servingExport;
    }

    /** Set when the session has finished, in-flight work included. */
    private final CountDownLatch ended = new CountDownLatch(1);

    /**
     * Graceful stop for server shutdown: stop reading (the reader sees end of stream), let
     * in-flight requests finish and reply, then close. Waits up to {@code timeoutMs}.
     */
    boolean shutdown(long timeoutMs) throws InterruptedException {
        try {
            if (raw instanceof SocketChannel sc) {
                sc.shutdownInput();
            }
        } catch (IOException e) {
            closeQuietly();
        }
        return ended.await(timeoutMs, TimeUnit.MILLISECONDS);
    }

    /**
     * Closes the socket. Never the TLS channel: its close sends close_notify under the TLS write
     * lock, which a writer stuck on a client that reads nothing holds; closing the socket under it
     * ends that writer too.
     */
    void closeQuietly() {
        try {
            raw.close();
        } catch (IOException ignored) {
            // Closing a socket has nothing useful to report.
        }
    }

    // ------------------------------------------------------------------ handshake

    /** Runs option haggling; returns the export to serve, or null when the client left. */
    private String handshake() throws IOException, NbdProtocolException {
        writeFully(ByteBuffer.wrap(HandshakeCodec.encodeGreeting()));
        int clientFlags = HandshakeCodec.decodeClientFlags(readBytes(4));
        noZeroes = (clientFlags & FLAG_C_NO_ZEROES) != 0;
        while (true) {
            HandshakeCodec.OptionHeader h = HandshakeCodec.decodeOptionHeader(readBytes(HandshakeCodec.OPTION_HEADER_BYTES));
            switch (h.framing()) {
                case CLOSE -> throw new NbdProtocolException("option " + h.code() + " payload of "
                        + h.payloadBytes() + " bytes is too large");
                case SKIP_TOO_BIG -> {
                    skip(h.payloadBytes());
                    if (tlsRequired() && !tlsActive) {
                        // FORCEDTLS: before STARTTLS every option other than STARTTLS/ABORT gets TLS_REQD.
                        NbdMetrics.TLS_REQUIRED_REFUSALS.inc();
                        sendOption(HandshakeCodec.encodeOptionError(h.code(), REP_ERR_TLS_REQD, TLS_REQUIRED_MESSAGE));
                    } else {
                        sendOption(HandshakeCodec.encodeOptionError(h.code(), REP_ERR_TOO_BIG,
                                "option data of " + h.payloadBytes() + " bytes is too large"));
                    }
                    continue;
                }
                case PARSE -> { }
            }
            NbdOption option = HandshakeCodec.decodeOption(h.code(), readBytes((int) h.payloadBytes()));
            if (tlsRequired() && !tlsActive) {
                switch (option) {
                    case NbdOption.StartTls s -> { }
                    case NbdOption.Abort a -> { }
                    case NbdOption.ExportName e -> {
                        // FORCEDTLS: this option cannot be answered with an error, so the spec says close.
                        NbdMetrics.TLS_REQUIRED_REFUSALS.inc();
                        throw new NbdProtocolException("NBD_OPT_EXPORT_NAME before TLS; TLS is required");
                    }
                    default -> {
                        NbdMetrics.TLS_REQUIRED_REFUSALS.inc();
                        sendOption(HandshakeCodec.encodeOptionError(option.code(), REP_ERR_TLS_REQD,
                                TLS_REQUIRED_MESSAGE));
                        continue;
                    }
                }
            }
            switch (option) {
                case NbdOption.ExportName(String name) -> {
                    Optional<Resolved> r = resolve(name);
                    if (r.isEmpty()) {
                        // The spec gives EXPORT_NAME no error reply: closing is the answer.
                        throw new NbdProtocolException("NBD_OPT_EXPORT_NAME for unknown export '" + name + "'");
                    }
                    enter(r.get());
                    writeFully(ByteBuffer.wrap(HandshakeCodec.encodeExportNameReply(sizeBytes, TRANSMISSION_FLAGS, noZeroes)));
                    return r.get().name();
                }
                case NbdOption.Abort a -> {
                    sendOption(HandshakeCodec.encodeOptionReply(a.code(), REP_ACK, new byte[0]));
                    return null;
                }
                case NbdOption.ListExports l -> {
                    for (String name : exports.exportNames()) {
                        sendOption(HandshakeCodec.encodeServerReply(name));
                    }
                    sendOption(HandshakeCodec.encodeOptionReply(l.code(), REP_ACK, new byte[0]));
                }
                case NbdOption.Info info -> {
                    Optional<Resolved> r = resolve(info.exportName());
                    if (r.isEmpty()) {
                        sendOption(HandshakeCodec.encodeOptionError(info.code(), REP_ERR_UNKNOWN,
                                exports.unknownExportMessage(info.exportName())));
                        continue;
                    }
                    if (info.go()) {
                        // Count the connection before the final ACK, so a client that saw the ACK
                        // also sees openConnections include it.
                        enter(r.get());
                        sendInfo(info, r.get());
                        return r.get().name();
                    }
                    sendInfo(info, r.get());
                }
                case NbdOption.StructuredReply s -> {
                    if (structuredReplies) {
                        sendOption(HandshakeCodec.encodeOptionError(s.code(), REP_ERR_INVALID,
                                "structured replies already negotiated"));
                    } else {
                        structuredReplies = true;
                        sendOption(HandshakeCodec.encodeOptionReply(s.code(), REP_ACK, new byte[0]));
                    }
                }
                case NbdOption.StartTls s -> startTls(s);
                case NbdOption.Unsupported u -> sendOption(HandshakeCodec.encodeOptionError(u.code(),
                        REP_ERR_UNSUP, "option " + u.code() + " is not supported"));
                case NbdOption.Malformed m -> sendOption(HandshakeCodec.encodeOptionError(m.code(),
                        REP_ERR_INVALID, m.reason()));
            }
        }
    }

    static final String TLS_REQUIRED_MESSAGE =
            "TLS is required: connect with nbds:// and a client certificate (NBD_OPT_STARTTLS first)";

    /** FORCEDTLS on this connection: TCP with TLS configured as required. */
    private boolean tlsRequired() {
        return tls != null && tls.policy() == NbdTls.Policy.REQUIRED;
    }

    /** NBD_OPT_STARTTLS: ACK, then the TLS handshake over the socket; a failed handshake ends the session. */
    private void startTls(NbdOption.StartTls s) throws IOException, NbdProtocolException {
        if (tls == null) {
            sendOption(HandshakeCodec.encodeOptionError(s.code(), REP_ERR_POLICY, tcp
                    ? "TLS is not configured on this server"
                    : "TLS is not used on the local unix socket"));
            return;
        }
        if (tlsActive) {
            sendOption(HandshakeCodec.encodeOptionError(s.code(), REP_ERR_INVALID, "TLS is already active"));
            return;
        }
        if (inbound.hasRemaining()) {
            // Plaintext sent after STARTTLS, before the handshake: accepting it would let a
            // man in the middle inject options into the TLS session (the STARTTLS injection attack).
            throw new NbdProtocolException("client sent data after NBD_OPT_STARTTLS before the TLS handshake");
        }
        io.ballast.common.TlsEngines engines;
        try {
            engines = tls.engines().get();
        } catch (RuntimeException e) {
            log.atError().setCause(e).addKeyValue("peer", peer).log("nbd TLS context unavailable");
            sendOption(HandshakeCodec.encodeOptionError(s.code(), REP_ERR_PLATFORM, "TLS is unavailable on this server"));
            return;
        }
        sendOption(HandshakeCodec.encodeOptionReply(s.code(), REP_ACK, new byte[0]));
        // The node's engine (OpenSSL when it loads, else the JDK's), client certificate required, TLS
        // 1.2 at least (the spec). Buffers kept for the connection's life, of the kind the engine
        // works on without a copy (TlsChannels.allocator): releasing them after each record (the
        // library's default) meant an allocation per read and write (docs/perf/nbd-tls.md).
        javax.net.ssl.SSLEngine engine = engines.serverEngine();
        tlsEngine = engine;
        tlschannel.ServerTlsChannel tlsChannel = tlschannel.ServerTlsChannel.newBuilder(raw, engines.jdkContext())
                .withEngineFactory(ctx -> engine)
                .withPlainBufferAllocator(io.ballast.common.TlsEngines.allocator(engines.kind()))
                .withEncryptedBufferAllocator(io.ballast.common.TlsEngines.allocator(engines.kind()))
                .withReleaseBuffers(false)
                .build();
        try {
            tlsChannel.handshake();
        } catch (javax.net.ssl.SSLException e) {
            NbdMetrics.TLS_HANDSHAKES.labelValues("failed").inc();
            sendPendingAlert(engine);
            throw new NbdProtocolException("TLS handshake failed: "
                    + io.ballast.common.TlsEngines.explained(e).getMessage());
        }
        channel = tlsChannel;
        tlsActive = true;
        NbdMetrics.TLS_HANDSHAKES.labelValues("ok").inc();
        if (log.isInfoEnabled()) {
            String client;
            try {
                client = ((java.security.cert.X509Certificate) tlsChannel.getSslEngine().getSession()
                        .getPeerCertificates()[0]).getSubjectX500Principal().getName();
            } catch (javax.net.ssl.SSLPeerUnverifiedException e) {
                client = "?";
            }
            log.atInfo().addKeyValue("peer", peer).addKeyValue("client", client)
                    .addKeyValue("protocol", tlsChannel.getSslEngine().getSession().getProtocol())
                    .log("nbd TLS established");
        }
    }

    /**
     * After a failed handshake the engine holds the alert saying why (certificate_required,
     * certificate_unknown, ...); sending it lets the client report the reason rather than a bare
     * disconnect. Best effort, timed like a reply write.
     */
    private void sendPendingAlert(javax.net.ssl.SSLEngine engine) {
        ByteBuffer out = ByteBuffer.allocate(engine.getSession().getPacketBufferSize());
        replyWaitSinceNs = System.nanoTime();
        try {
            engine.closeOutbound();
            for (int i = 0; i < 4 && !engine.isOutboundDone(); i++) {
                engine.wrap(ByteBuffer.allocate(0), out);
            }
            out.flip();
            while (out.hasRemaining() && raw.write(out) >= 0) {
                // blocking socket: loops only on a partial write
            }
        } catch (IOException | RuntimeException ignored) {
            // The connection is being closed for the handshake failure anyway.
        } finally {
            replyWaitSinceNs = 0;
        }
    }

    /**
     * Sends close_notify (the spec: close the TLS session, then the TCP connection). Timed like a
     * reply write, so a client that reads nothing cannot hold the session here.
     */
    private void closeTls() {
        if (!(channel instanceof tlschannel.TlsChannel t) || replyChannelBroken || !raw.isOpen()) {
            return;
        }
        replyWaitSinceNs = System.nanoTime();
        try {
            t.shutdown();
        } catch (IOException | RuntimeException e) {
            // The client is gone or broke TLS: the socket closes next anyway.
        } finally {
            replyWaitSinceNs = 0;
        }
    }

    private record Resolved(String name, BlockDevice device) {}

    /**
     * The empty name selects the only export when exactly one exists (what `nbdinfo nbd://host`
     * expects); with zero or several exports it is unknown rather than a guess.
     */
    private Optional<Resolved> resolve(String name) {
        String effective = name;
        if (name.isEmpty()) {
            List<String> names = exports.exportNames();
            if (names.size() != 1) {
                return Optional.empty();
            }
            effective = names.getFirst();
        }
        String n = effective;
        return exports.open(n).map(d -> new Resolved(n, d));
    }

    private void enter(Resolved r) {
        device = r.device();
        sizeBytes = device.sizeBytes();
        servingExport = r.name();
        listener.transmissionStarted(this, servingExport);
    }

    private void sendInfo(NbdOption.Info info, Resolved r) throws IOException {
        int opt = info.code();
        sendOption(HandshakeCodec.encodeInfoExport(opt, r.device().sizeBytes(), TRANSMISSION_FLAGS));
        if (info.infoRequests().contains(INFO_NAME)) {
            sendOption(HandshakeCodec.encodeInfoString(opt, INFO_NAME, r.name()));
        }
        if (info.infoRequests().contains(INFO_DESCRIPTION)) {
            sendOption(HandshakeCodec.encodeInfoString(opt, INFO_DESCRIPTION, "Ballast volume " + r.name()));
        }
        // Always sent: clients then keep requests within what we accept.
        sendOption(HandshakeCodec.encodeInfoBlockSize(opt, MIN_BLOCK_BYTES, PREFERRED_BLOCK_BYTES,
                config.maxPayloadBytes()));
        sendOption(HandshakeCodec.encodeOptionReply(opt, REP_ACK, new byte[0]));
    }

    private void sendOption(byte[] reply) throws IOException {
        writeFully(ByteBuffer.wrap(reply));
    }

    // ------------------------------------------------------------------ transmission

    private void transmission() throws IOException, NbdProtocolException {
        while (true) {
            header.clear();
            readFully(header);
            header.flip();
            NbdRequest request = TransmissionCodec.decodeRequest(header);
            long startNs = System.nanoTime();
            switch (request) {
                case NbdRequest.Disconnect d -> {
                    sendBatch();
                    log.atDebug().addKeyValue("peer", peer).log("nbd client sent NBD_CMD_DISC");
                    return;
                }
                case NbdRequest.Rejected r -> {
                    skip(r.payloadBytes());
                    replyError(r.cookie(), r.type(), r.errno(), r.reason(), startNs);
                }
                case NbdRequest.Write w -> {
                    String problem = checkData(w.offsetBytes(), w.lengthBytes());
                    if (problem != null) {
                        if (w.lengthBytes() > (long) NbdServerConfig.OVERSIZED_WRITE_SKIP_FACTOR * config.maxPayloadBytes()) {
                            // Reading gigabytes just to stay in sync is what an attacker wants: answer, then hang up.
                            replyError(w.cookie(), CMD_WRITE, EINVAL, problem, startNs);
                            sendBatch();
                            log.atWarn().addKeyValue("peer", peer).addKeyValue("lengthBytes", w.lengthBytes())
                                    .log("nbd connection closed: WRITE announces far more than the maximum payload");
                            return;
                        }
                        skip(w.lengthBytes());
                        int errno = problem == OUT_OF_RANGE ? ENOSPC : EINVAL;
                        replyError(w.cookie(), CMD_WRITE, errno, problem, startNs);
                        continue;
                    }
                    if (device.asyncWrites()) {
                        acquireSlot();
                        startAsyncWrite(w, readPayload(w.lengthBytes(), true), startNs);
                        continue;
                    }
                    boolean inline = runInline(w.lengthBytes())
                            || (w.lengthBytes() <= INLINE_MAX_BYTES && idleBut(w.lengthBytes()));
                    if (!inline) {
                        acquireSlot();
                    }
                    ByteBuffer buf = readPayload(w.lengthBytes(), !inline);
                    if (inline) {
                        executeInline(request, buf, startNs);
                    } else {
                        dispatch(request, buf, startNs);
                    }
                }
                case NbdRequest.Read rd -> {
                    String problem = checkData(rd.offsetBytes(), rd.lengthBytes());
                    if (problem != null) {
                        replyError(rd.cookie(), CMD_READ, EINVAL, problem, startNs);
                        continue;
                    }
                    ByteBuffer buf = takeBuffer((int) rd.lengthBytes());
                    if (rd.lengthBytes() <= INLINE_MAX_BYTES && tryReadInline(rd, buf, startNs)) {
                        continue;
                    }
                    acquireSlot();
                    dispatch(request, buf, startNs);
                }
                case NbdRequest.Trim t -> {
                    String problem = checkRange(t.offsetBytes(), t.lengthBytes());
                    if (problem != null) {
                        replyError(t.cookie(), CMD_TRIM, EINVAL, problem, startNs);
                        continue;
                    }
                    acquireSlot();
                    dispatch(request, takeBuffer(0), startNs);
                }
                case NbdRequest.WriteZeroes z -> {
                    String problem = checkRange(z.offsetBytes(), z.lengthBytes());
                    if (problem != null) {
                        replyError(z.cookie(), CMD_WRITE_ZEROES, EINVAL, problem, startNs);
                        continue;
                    }
                    acquireSlot();
                    dispatch(request, takeBuffer(0), startNs);
                }
                case NbdRequest.Flush f -> {
                    if (idle()) {
                        // Nothing else to do meanwhile (write-then-flush at QD1): no hand-off.
                        sendBatch();
                        executeInline(request, takeBuffer(0), startNs);
                    } else {
                        acquireSlot();
                        dispatch(request, takeBuffer(0), startNs);
                    }
                }
            }
        }
    }

    // Identity-compared marker so the caller can tell range errors (ENOSPC on write) from others.
    private static final String OUT_OF_RANGE = "offset and length lie beyond the end of the export";

    /** Checks a READ/WRITE: non-empty, at most max payload, inside the export. */
    private String checkData(long offsetBytes, long lengthBytes) {
        if (lengthBytes == 0) {
            return "zero-length request";
        }
        if (lengthBytes > config.maxPayloadBytes()) {
            return "request of " + lengthBytes + " bytes exceeds the maximum of " + config.maxPayloadBytes();
        }
        return checkRange(offsetBytes, lengthBytes);
    }

    private String checkRange(long offsetBytes, long lengthBytes) {
        if (lengthBytes == 0) {
            return "zero-length request";
        }
        // offset is unsigned on the wire: a negative long is beyond 2^63, out of range.
        if (offsetBytes < 0 || offsetBytes > sizeBytes || lengthBytes > sizeBytes - offsetBytes) {
            return OUT_OF_RANGE;
        }
        return null;
    }

    /**
     * A payload buffer within this connection's budget and the node's ({@link BufferPool}); replies
     * held in the batch go out first if we must wait. While it waits, this connection is not read
     * (backpressure on its client only); a connection closed meanwhile ends the wait.
     */
    private ByteBuffer takeBuffer(int dataBytes) throws IOException {
        int kib = BufferPool.classBytes(dataBytes) / 1024;
        if (!payloadBudgetKib.tryAcquire(kib)) {
            sendBatch();
            payloadBudgetKib.acquireUninterruptibly(kib);
        }
        try {
            return buffers.acquire(dataBytes, bufferAccount, () -> {
                sendBatch(); // our own held replies may be what frees room
                return raw.isOpen();
            });
        } catch (IOException | RuntimeException e) {
            payloadBudgetKib.release(kib);
            throw e;
        }
    }

    private void giveBuffer(ByteBuffer b) {
        int kib = BufferPool.classBytes(b.capacity() - BufferPool.HEADROOM_BYTES) / 1024;
        buffers.release(b, bufferAccount);
        payloadBudgetKib.release(kib);
    }

    /** Takes an in-flight slot for a worker; replies held in the batch go out first if we must wait. */
    private void acquireSlot() {
        if (!inFlight.tryAcquire()) {
            sendBatch();
            inFlight.acquireUninterruptibly();
        }
    }

    /** True when no worker has a request and no further request is already buffered. */
    private boolean idle() {
        return idleBut(0);
    }

    /**
     * As {@link #idle}, where the read-ahead may hold {@code payloadBytes} of the current request.
     * Then running the request inline delays nothing that is waiting (QD1): a hand-off would only
     * add its cost, however slow the request.
     */
    private boolean idleBut(long payloadBytes) {
        return inbound.remaining() <= payloadBytes
                && inFlight.availablePermits() == config.maxInFlightPerConnection();
    }

    /**
     * A read runs on the reader only if the device can serve it without waiting (cached data):
     * a read that would wait on the disk goes to a worker, so later requests overtake it.
     */
    private boolean tryReadInline(NbdRequest.Read rd, ByteBuffer buf, long startNs) {
        try {
            if (!device.tryReadNoWait(rd.offsetBytes(), buf)) {
                buf.position(BufferPool.HEADROOM_BYTES);
                return false;
            }
        } catch (RuntimeException e) {
            buf.position(BufferPool.HEADROOM_BYTES);
            return false; // the worker's ordinary read reports it properly
        }
        int len = (int) rd.lengthBytes();
        queueReply(readDataReply(rd.cookie(), rd.offsetBytes(), buf, len), buf);
        NbdMetrics.READ_BYTES.inc(len);
        NbdMetrics.request(CMD_READ, 0, System.nanoTime() - startNs);
        return true;
    }

    /** Whether a write of {@code lengthBytes} runs on the reader. */
    private boolean runInline(long lengthBytes) {
        if (lengthBytes > INLINE_MAX_BYTES) {
            return false;
        }
        if (inlineAvgNs <= INLINE_BUDGET_NS) {
            return true;
        }
        return ++inlineProbe % INLINE_PROBE_EVERY == 0;
    }

    private void dispatch(NbdRequest request, ByteBuffer buf, long startNs) {
        workers.newThread(() -> execute(request, buf, startNs)).start();
    }

    // ------------------------------------------------------------------ asynchronous writes

    /**
     * Reply and what to give back once it is sent: the pool buffer, or (when the device took the
     * write's payload) the session's reference to the payload over it, which frees the buffer once
     * every replica has the bytes too.
     */
    private record AsyncReply(ByteBuffer reply, ByteBuffer buf, Payload payload) {}

    /** Replies of asynchronous writes, from the device's completion threads to {@link #replyWriter}. */
    private final java.util.concurrent.ConcurrentLinkedQueue<AsyncReply> asyncReplies =
            new java.util.concurrent.ConcurrentLinkedQueue<>();
    private volatile Thread replyWriter;
    private volatile boolean replyWriterParked;
    private volatile boolean replyWriterStop;

    /**
     * A write on a device that completes writes elsewhere (a replicated volume): no thread waits
     * for it. The completion queues the reply; one reply-writer thread per connection sends whatever
     * replies are queued in one gather write, so a burst of completions costs one wake-up and one
     * syscall, not a thread and a write each. The in-flight slot is released once the reply is sent.
     */
    private void startAsyncWrite(NbdRequest.Write w, ByteBuffer buf, long startNs) {
        if (replyWriter == null) {
            replyWriter = Thread.ofVirtual().name("nbd-replies-" + peer).start(this::replyLoop);
        }
        if (device.takesPayloads()) {
            // No copy: the device shares the pooled buffer's data among its replicas. The session keeps
            // one reference for the reply, whose header goes into the buffer's headroom (not the data).
            Payload payload = Payload.pooled(buf.duplicate(), () -> giveBuffer(buf));
            try {
                device.writeAsync(w.offsetBytes(), payload.retain(), w.fua(),
                        error -> asyncWriteDone(w, buf, payload, startNs, error));
            } catch (RuntimeException e) {
                asyncWriteDone(w, buf, payload, startNs, e);
            }
            return;
        }
        try {
            device.writeAsync(w.offsetBytes(), buf, w.fua(), error -> asyncWriteDone(w, buf, null, startNs, error));
        } catch (RuntimeException e) {
            asyncWriteDone(w, buf, null, startNs, e);
        }
    }

    /** Any thread (the engine's agent, usually): builds the reply and hands it to the reply writer. */
    private void asyncWriteDone(NbdRequest.Write w, ByteBuffer buf, Payload payload, long startNs, RuntimeException error) {
        ByteBuffer reply;
        if (error == null) {
            reply = okReply(w.cookie(), buf);
            NbdMetrics.WRITTEN_BYTES.inc(w.lengthBytes());
            NbdMetrics.request(CMD_WRITE, 0, System.nanoTime() - startNs);
        } else {
            int errno;
            String message;
            if (error instanceof BallastException b) {
                errno = NbdErrors.errno(b.code(), CMD_WRITE);
                message = b.getMessage();
                logFailed(b, CMD_WRITE, w.offsetBytes());
            } else {
                errno = EIO;
                message = "internal error";
                log.atError().setCause(error).addKeyValue("peer", peer).addKeyValue("command", commandName(CMD_WRITE))
                        .log("nbd request failed with an unexpected exception");
            }
            reply = errorReply(w.cookie(), errno, message);
            NbdMetrics.request(CMD_WRITE, errno, System.nanoTime() - startNs);
        }
        asyncReplies.add(new AsyncReply(reply, buf, payload));
        if (replyWriterParked) {
            java.util.concurrent.locks.LockSupport.unpark(replyWriter);
        }
    }

    /** The reply writer: gathers queued replies into one write; ends after the session's in-flight work. */
    private void replyLoop() {
        ByteBuffer[] out = new ByteBuffer[MAX_BATCH];
        ByteBuffer[] release = new ByteBuffer[MAX_BATCH];
        Payload[] payloads = new Payload[MAX_BATCH];
        for (;;) {
            int n = 0;
            for (AsyncReply r; n < MAX_BATCH && (r = asyncReplies.poll()) != null; n++) {
                out[n] = r.reply();
                release[n] = r.payload() == null ? r.buf() : null;
                payloads[n] = r.payload();
            }
            if (n == 0) {
                if (replyWriterStop) {
                    return;
                }
                replyWriterParked = true;
                if (asyncReplies.isEmpty() && !replyWriterStop) {
                    java.util.concurrent.locks.LockSupport.park(this);
                }
                replyWriterParked = false;
                continue;
            }
            try {
                writeRepliesAndFree(out, release, n);
            } finally {
                for (int i = 0; i < n; i++) {
                    if (payloads[i] != null) {
                        payloads[i].release();
                        payloads[i] = null;
                    }
                }
                inFlight.release(n);
            }
        }
    }

    private void stopReplyWriter() {
        replyWriterStop = true;
        Thread t = replyWriter;
        if (t != null) {
            java.util.concurrent.locks.LockSupport.unpark(t);
        }
    }

    /** Worker: runs one request against the device and sends its reply. */
    private void execute(NbdRequest request, ByteBuffer buf, long startNs) {
        try {
            sendReply(perform(request, buf, startNs));
        } finally {
            giveBuffer(buf);
            inFlight.release();
        }
    }

    /** Reader: runs one request and queues its reply for the next gather write. */
    private void executeInline(NbdRequest request, ByteBuffer buf, long startNs) {
        long t0 = System.nanoTime();
        ByteBuffer reply;
        try {
            reply = perform(request, buf, startNs);
        } catch (RuntimeException | Error e) {
            giveBuffer(buf);
            throw e;
        }
        if (!(request instanceof NbdRequest.Flush)) {
            long took = System.nanoTime() - t0;
            inlineAvgNs += (took - inlineAvgNs) >> 3;
        }
        queueReply(reply, buf);
    }

    /** Holds a reply for the next gather write; {@code buf} goes back to the pool once it is sent. */
    private void queueReply(ByteBuffer reply, ByteBuffer buf) {
        batch[batchCount] = reply;
        batchRelease[batchCount] = buf;
        batchCount++;
        batchBytes += reply.remaining();
        if (batchCount == MAX_BATCH || batchBytes >= MAX_BATCH_BYTES) {
            sendBatch();
        }
    }

    /**
     * Writes the first {@code n} reply buffers under the write lock, in one gather write where the
     * channel allows; a failed write marks the channel broken and closes the session (later replies
     * are dropped: the client is gone).
     */
    /** A reply could not be written: the connection is done for (its client sees it closed). */
    private void replyNotDelivered(IOException e) {
        replyChannelBroken = true;
        log.atDebug().addKeyValue("peer", peer).addKeyValue("error", e.toString()).log("nbd reply not delivered");
        closeQuietly();
    }

    /**
     * Reads a write's payload into a pooled buffer, positioned after the reply headroom. If the
     * read fails, the buffer is given back and, when {@code holdsSlot}, the in-flight slot freed.
     */
    private ByteBuffer readPayload(long lengthBytes, boolean holdsSlot) throws IOException {
        ByteBuffer buf = takeBuffer((int) lengthBytes);
        try {
            readRestOfRequest(buf);
        } catch (IOException e) {
            giveBuffer(buf);
            if (holdsSlot) {
                inFlight.release();
            }
            throw e;
        }
        return buf.position(BufferPool.HEADROOM_BYTES);
    }

    /** {@link #writeReplies}, then gives back each reply's pooled buffer and clears both arrays, also on failure. */
    private void writeRepliesAndFree(ByteBuffer[] replies, ByteBuffer[] pooled, int n) {
        try {
            writeReplies(replies, n);
        } finally {
            for (int i = 0; i < n; i++) {
                if (pooled[i] != null) {
                    giveBuffer(pooled[i]);
                }
                replies[i] = null;
                pooled[i] = null;
            }
        }
    }

    private void writeReplies(ByteBuffer[] bufs, int n) {
        if (replyChannelBroken) {
            return;
        }
        writeLock.lock();
        try {
            if (n == 1 || !(channel instanceof GatheringByteChannel g)) {
                for (int i = 0; i < n; i++) {
                    writeFully(bufs[i]);
                }
            } else {
                int first = 0;
                int empty = 0;
                while (first < n) {
                    replyWaitSinceNs = System.nanoTime();
                    long written;
                    try {
                        written = g.write(bufs, first, n - first);
                    } finally {
                        replyWaitSinceNs = 0;
                    }
                    empty = written > 0 ? 0 : empty + 1;
                    if (empty >= MAX_EMPTY_WRITES) {
                        throw new IOException("the connection takes no more bytes (its TLS session is closed)");
                    }
                    while (first < n && !bufs[first].hasRemaining()) {
                        first++;
                    }
                }
            }
        } catch (IOException e) {
            replyNotDelivered(e);
        } finally {
            writeLock.unlock();
        }
    }

    /** Sends the batched replies in one gather write (as far as the socket takes them) and frees their buffers. */
    private void sendBatch() {
        int n = batchCount;
        if (n == 0) {
            return;
        }
        try {
            writeRepliesAndFree(batch, batchRelease, n);
        } finally {
            batchCount = 0;
            batchBytes = 0;
        }
    }

    /**
     * An error answered to the client: a system fault (the client sees EIO or ESHUTDOWN) at WARN with
     * the engine's reason, so the node's log says which request failed and why; the client's own
     * mistakes (a range past the end) at DEBUG.
     */
    private void logFailed(BallastException e, int type, long offsetBytes) {
        (e.code().isSystemFault() ? log.atWarn() : log.atDebug()).addKeyValue("peer", peer).addKeyValue("export", servingExport)
                .addKeyValue("command", commandName(type)).addKeyValue("offsetBytes", offsetBytes).addKeyValue("code", e.code())
                .addKeyValue("error", e.getMessage()).log("nbd request failed");
    }

    /**
     * Runs one request against the device; returns its reply, ready to send: {@code buf} itself
     * (header written into its headroom) or, for an error, a fresh buffer. Does not release {@code buf}.
     */
    private ByteBuffer perform(NbdRequest request, ByteBuffer buf, long startNs) {
        int type = -1;
        int errno = 0;
        String message = null;
        try {
            switch (request) {
                case NbdRequest.Read r -> {
                    type = CMD_READ;
                    device.read(r.offsetBytes(), buf);
                }
                case NbdRequest.Write w -> {
                    type = CMD_WRITE;
                    device.write(w.offsetBytes(), buf, w.fua());
                }
                case NbdRequest.Flush f -> {
                    type = CMD_FLUSH;
                    device.flush();
                }
                case NbdRequest.Trim t -> {
                    type = CMD_TRIM;
                    device.trim(t.offsetBytes(), t.lengthBytes(), t.fua());
                }
                case NbdRequest.WriteZeroes z -> {
                    type = CMD_WRITE_ZEROES;
                    // FAST_ZERO needs no check: zeroing is metadata-only in our devices.
                    device.writeZeroes(z.offsetBytes(), z.lengthBytes(), !z.noHole(), z.fua());
                }
                case NbdRequest.Disconnect d -> throw new AssertionError("DISC is never dispatched");
                case NbdRequest.Rejected r -> throw new AssertionError("rejections are never dispatched");
            }
        } catch (BallastException e) {
            errno = NbdErrors.errno(e.code(), type);
            message = e.getMessage();
            logFailed(e, type, request instanceof NbdRequest.Read r ? r.offsetBytes() : request instanceof NbdRequest.Write w
                    ? w.offsetBytes() : -1);
        } catch (RuntimeException e) {
            errno = EIO;
            message = "internal error";
            log.atError().setCause(e).addKeyValue("peer", peer).addKeyValue("command", commandName(type))
                    .log("nbd request failed with an unexpected exception");
        }
        if (errno != 0) {
            NbdMetrics.request(type, errno, System.nanoTime() - startNs);
            return errorReply(request.cookie(), errno, message);
        }
        ByteBuffer reply;
        if (type == CMD_READ) {
            NbdRequest.Read r = (NbdRequest.Read) request;
            reply = readDataReply(r.cookie(), r.offsetBytes(), buf, (int) r.lengthBytes());
            NbdMetrics.READ_BYTES.inc(r.lengthBytes());
        } else {
            reply = okReply(request.cookie(), buf);
            if (type == CMD_WRITE) {
                NbdMetrics.WRITTEN_BYTES.inc(((NbdRequest.Write) request).lengthBytes());
            }
        }
        NbdMetrics.request(type, 0, System.nanoTime() - startNs);
        return reply;
    }

    // ------------------------------------------------------------------ replies

    private ByteBuffer readDataReply(long cookie, long offsetBytes, ByteBuffer buf, int dataBytes) {
        int headerBytes = structuredReplies ? STRUCTURED_REPLY_HEADER_BYTES + 8 : SIMPLE_REPLY_HEADER_BYTES;
        int start = BufferPool.HEADROOM_BYTES - headerBytes;
        buf.limit(BufferPool.HEADROOM_BYTES + dataBytes).position(start);
        if (structuredReplies) {
            TransmissionCodec.encodeOffsetDataHeader(buf, cookie, offsetBytes, dataBytes);
        } else {
            TransmissionCodec.encodeSimpleReply(buf, 0, cookie);
        }
        buf.position(start);
        return buf;
    }

    private ByteBuffer okReply(long cookie, ByteBuffer buf) {
        int headerBytes = structuredReplies ? STRUCTURED_REPLY_HEADER_BYTES : SIMPLE_REPLY_HEADER_BYTES;
        buf.clear().limit(headerBytes);
        if (structuredReplies) {
            TransmissionCodec.encodeNone(buf, cookie);
        } else {
            TransmissionCodec.encodeSimpleReply(buf, 0, cookie);
        }
        buf.flip();
        return buf;
    }

    /** Error replies are rare, so they get a fresh buffer (the message length varies). */
    private void replyError(long cookie, int type, int errno, String message, long startNs) {
        sendReply(errorReply(cookie, errno, message));
        NbdMetrics.request(type, errno, System.nanoTime() - startNs);
    }

    private ByteBuffer errorReply(long cookie, int errno, String message) {
        ByteBuffer b;
        if (structuredReplies) {
            b = ByteBuffer.allocate(TransmissionCodec.errorChunkBytes(message));
            TransmissionCodec.encodeError(b, cookie, errno, message);
        } else {
            b = ByteBuffer.allocate(SIMPLE_REPLY_HEADER_BYTES);
            TransmissionCodec.encodeSimpleReply(b, errno, cookie);
        }
        b.flip();
        return b;
    }

    /** Sends one complete reply; a broken socket closes the session (the reader then stops). */
    private void sendReply(ByteBuffer reply) {
        if (replyChannelBroken) {
            return;
        }
        writeLock.lock();
        try {
            writeFully(reply);
        } catch (IOException e) {
            replyNotDelivered(e);
        } finally {
            writeLock.unlock();
        }
    }

    // ------------------------------------------------------------------ byte I/O

    /**
     * Writes in slices of at most {@link #WRITE_SLICE_BYTES}, each timed for the stall watchdog: a
     * client that reads nothing of a reply for the stalled-request timeout is cut off (its buffers
     * count against the node's budget).
     */
    /** Consecutive writes that took no byte before the connection counts as dead (every channel here blocks). */
    static final int MAX_EMPTY_WRITES = 100;

    private void writeFully(ByteBuffer b) throws IOException {
        int limit = b.limit();
        try {
            int empty = 0;
            while (b.hasRemaining()) {
                b.limit(Math.min(limit, b.position() + WRITE_SLICE_BYTES));
                replyWaitSinceNs = System.nanoTime();
                int n;
                try {
                    n = channel.write(b);
                } finally {
                    replyWaitSinceNs = 0;
                }
                b.limit(limit);
                // a blocking channel that takes nothing is dead (a TLS session the engine closed): never spin on it
                empty = n > 0 ? 0 : empty + 1;
                if (empty >= MAX_EMPTY_WRITES) {
                    throw new IOException("the connection takes no more bytes (its TLS session is closed)");
                }
            }
        } finally {
            b.limit(limit);
        }
    }

    static final int WRITE_SLICE_BYTES = 1024 * 1024;
    /** System.nanoTime() when a reply write began waiting for the client to take bytes; 0 when not. */
    private volatile long replyWaitSinceNs;

    /** {@link #readFully} of a payload whose header has arrived: the watchdog may close a connection stalled here. */
    private void readRestOfRequest(ByteBuffer dst) throws IOException {
        midRequestWaitSinceNs = System.nanoTime();
        try {
            readFully(dst);
        } finally {
            midRequestWaitSinceNs = 0;
        }
    }

    /** Fills {@code dst} completely, from the read-ahead first, then from the socket. */
    private void readFully(ByteBuffer dst) throws IOException {
        drainInbound(dst);
        if (!dst.hasRemaining()) {
            return;
        }
        // About to wait for the client: replies it may be waiting for go out first.
        sendBatch();
        if (dst.remaining() >= INBOUND_BUFFER_BYTES / 2) {
            // Large payloads go straight into their buffer: no copy.
            while (dst.hasRemaining()) {
                if (channel.read(dst) < 0) {
                    throw new EOFException("peer closed the connection");
                }
            }
            return;
        }
        inbound.clear();
        while (inbound.position() < dst.remaining()) {
            if (channel.read(inbound) < 0) {
                inbound.flip();
                throw new EOFException("peer closed the connection");
            }
        }
        inbound.flip();
        drainInbound(dst);
    }

    private void drainInbound(ByteBuffer dst) {
        int n = Math.min(inbound.remaining(), dst.remaining());
        if (n > 0) {
            dst.put(dst.position(), inbound, inbound.position(), n);
            dst.position(dst.position() + n);
            inbound.position(inbound.position() + n);
        }
    }

    private byte[] readBytes(int count) throws IOException {
        byte[] bytes = new byte[count];
        readFully(ByteBuffer.wrap(bytes));
        return bytes;
    }

    /** Reads and discards {@code bytes} in bounded chunks: never allocate what the client asks for. */
    private void skip(long bytes) throws IOException {
        if (bytes == 0) {
            return;
        }
        ByteBuffer chunk = ByteBuffer.allocate((int) Math.min(SKIP_CHUNK_BYTES, bytes));
        long left = bytes;
        while (left > 0) {
            chunk.clear().limit((int) Math.min(chunk.capacity(), left));
            readRestOfRequest(chunk);
            left -= chunk.limit();
        }
    }
}
