package io.ballast.common;

import io.grpc.netty.shaded.io.netty.buffer.UnpooledByteBufAllocator;
import io.grpc.netty.shaded.io.netty.handler.ssl.ClientAuth;
import io.grpc.netty.shaded.io.netty.handler.ssl.OpenSsl;
import io.grpc.netty.shaded.io.netty.handler.ssl.SslContext;
import io.grpc.netty.shaded.io.netty.handler.ssl.SslContextBuilder;
import io.grpc.netty.shaded.io.netty.handler.ssl.SslProvider;
import io.grpc.netty.shaded.io.netty.util.ReferenceCountUtil;
import io.prometheus.metrics.core.metrics.Info;
import java.util.Locale;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLException;
import javax.net.ssl.X509ExtendedKeyManager;
import javax.net.ssl.X509ExtendedTrustManager;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Makes the SSLEngines of the replication port's and the NBD listener's TLS: OpenSSL (BoringSSL through
 * netty-tcnative) when its native library loads, else the JDK's. Measured on the replication stream,
 * OpenSSL's engine costs a fraction of JSSE's CPU per MiB (docs/perf/tls.md); the cipher is the same
 * AES-GCM with the same hardware instructions, the difference is JSSE's per-record overhead.
 *
 * <p>The netty-tcnative we use is the copy inside grpc-netty-shaded, already a dependency for the Raft
 * port's gRPC (its BoringSSL build for linux x86_64 and aarch64 ships in that jar): no second native
 * library. Both engines are built on the node's own {@link NodeKeyManager} and trust manager, which
 * are asked on every handshake, so renewal and revocation apply to both alike and peer
 * authentication is exactly as strict with either.
 *
 * <p>{@code BALLAST_TLS_ENGINE=jdk} (or {@code -Dballast.tls.engine=jdk}) forces the JDK engine, for
 * both ports.
 */
public final class TlsEngines {
    private static final Logger log = LoggerFactory.getLogger(TlsEngines.class);

    /** Which implementation makes the engines. */
    public enum Kind {
        OPENSSL("openssl"),
        JDK("jdk");

        private final String label;

        Kind(String label) {
            this.label = label;
        }

        public String label() {
            return label;
        }
    }

    /** Exposed as {@code ballast_tls_engine_info{engine="openssl"} 1}. */
    private static final Info ENGINE_INFO = Info.builder()
            .name("ballast_tls_engine")
            .help("1 for the TLS engine this node's replication and NBD ports use (openssl or jdk)")
            .labelNames("engine")
            .register();

    private static final Kind PREFERRED = choose();

    private final Kind kind;
    private final SSLContext jdk;
    private final SslContext server; // null for JDK
    private final SslContext client; // null for JDK

    private TlsEngines(Kind kind, SSLContext jdk, SslContext server, SslContext client) {
        this.kind = kind;
        this.jdk = jdk;
        this.server = server;
        this.client = client;
    }

    /**
     * Engines presenting {@code keys}, trusting what {@code trust} accepts; {@code jdk} is the same
     * identity as a JDK context, for the fallback.
     */
    public static TlsEngines of(X509ExtendedKeyManager keys, X509ExtendedTrustManager trust, SSLContext jdk) {
        return of(PREFERRED, keys, trust, jdk);
    }

    /** As {@link #of(X509ExtendedKeyManager, X509ExtendedTrustManager, SSLContext)} with the kind chosen (tests). */
    public static TlsEngines of(Kind wanted, X509ExtendedKeyManager keys, X509ExtendedTrustManager trust, SSLContext jdk) {
        return of(wanted, keys, trust, jdk, "replication");
    }

    /**
     * As {@link #of(Kind, X509ExtendedKeyManager, X509ExtendedTrustManager, SSLContext)}, for the port
     * named by {@code use} ({@code replication}, {@code nbd}) in the log line that says which engine
     * it got.
     */
    public static TlsEngines of(Kind wanted, X509ExtendedKeyManager keys, X509ExtendedTrustManager trust, SSLContext jdk,
            String use) {
        if (wanted == Kind.OPENSSL) {
            try {
                SslContext server = SslContextBuilder.forServer(keys).trustManager(trust).clientAuth(ClientAuth.REQUIRE)
                        .sslProvider(SslProvider.OPENSSL_REFCNT).protocols("TLSv1.3", "TLSv1.2").build();
                SslContext client = SslContextBuilder.forClient().keyManager(keys).trustManager(trust)
                        .sslProvider(SslProvider.OPENSSL_REFCNT).protocols("TLSv1.3", "TLSv1.2").build();
                return inUse(new TlsEngines(Kind.OPENSSL, jdk, server, client), use);
            } catch (SSLException | RuntimeException | LinkageError e) {
                log.atWarn().addKeyValue("use", use).addKeyValue("reason", String.valueOf(e))
                        .log("OpenSSL TLS engine unusable; using the JDK's");
            }
        }
        return inUse(new TlsEngines(Kind.JDK, jdk, null, null), use);
    }

    private static TlsEngines inUse(TlsEngines e, String use) {
        ENGINE_INFO.setLabelValues(e.kind.label());
        log.atInfo().addKeyValue("engine", e.kind.label())
                .addKeyValue("version", e.kind == Kind.OPENSSL ? OpenSsl.versionString() : Runtime.version().toString())
                .log("TLS engine for " + use);
        return e;
    }

    /** The engine kind the process prefers: OpenSSL if its native library loaded and it is not turned off. */
    public static Kind preferred() {
        return PREFERRED;
    }

    private static Kind choose() {
        String forced = System.getProperty("ballast.tls.engine", System.getenv("BALLAST_TLS_ENGINE"));
        if (forced != null && forced.toLowerCase(Locale.ROOT).equals("jdk")) {
            log.atInfo().addKeyValue("engine", "jdk").log("TLS engine forced to the JDK's");
            return Kind.JDK;
        }
        try {
            if (OpenSsl.isAvailable()) {
                return Kind.OPENSSL;
            }
            log.atWarn().addKeyValue("engine", "jdk").addKeyValue("reason", String.valueOf(OpenSsl.unavailabilityCause()))
                    .log("OpenSSL native library not loaded; replication TLS uses the JDK's engine");
        } catch (LinkageError e) {
            log.atWarn().addKeyValue("engine", "jdk").addKeyValue("reason", String.valueOf(e))
                    .log("OpenSSL classes not loadable; replication TLS uses the JDK's engine");
        }
        return Kind.JDK;
    }

    public Kind kind() {
        return kind;
    }

    /** The same identity as a JDK context (tls-channel's server builder takes one; its engine comes from here). */
    public SSLContext jdkContext() {
        return jdk;
    }

    /** Server side, client certificate required. Give it back with {@link #release} once closed. */
    public SSLEngine serverEngine() {
        SSLEngine e = kind == Kind.OPENSSL ? server.newEngine(UnpooledByteBufAllocator.DEFAULT) : jdk.createSSLEngine();
        e.setUseClientMode(false);
        e.setNeedClientAuth(true);
        e.setEnabledProtocols(new String[] {"TLSv1.3", "TLSv1.2"});
        return e;
    }

    /** Client side. Give it back with {@link #release} once closed. */
    public SSLEngine clientEngine() {
        SSLEngine e = kind == Kind.OPENSSL ? client.newEngine(UnpooledByteBufAllocator.DEFAULT) : jdk.createSSLEngine();
        e.setUseClientMode(true);
        e.setEnabledProtocols(new String[] {"TLSv1.3", "TLSv1.2"});
        return e;
    }

    /** Frees an OpenSSL engine's native state (a no-op for the JDK's); idempotent. */
    public static void release(SSLEngine e) {
        if (e != null && ReferenceCountUtil.refCnt(e) > 0) {
            ReferenceCountUtil.release(e);
        }
    }

    /** The buffers that suit {@code kind}'s engine, for every TLS channel made on these engines. */
    public static tlschannel.BufferAllocator allocator(Kind kind) {
        return kind == Kind.OPENSSL ? new DirectAtLeast(ENCRYPTED_BUFFER_BYTES) : new tlschannel.HeapBufferAllocator();
    }

    public static final int ENCRYPTED_BUFFER_BYTES = Integer.getInteger("ballast.tls.bufferBytes", 64 * 1024);

    /**
     * Direct buffers of at least {@code minBytes}: with room for several records, OpenSSL's engine
     * wraps (and unwraps) several per call, so a 256 KiB frame batch leaves in a few socket writes
     * rather than one per 16 KiB record. Freed by the GC (tls-channel's own direct allocator frees
     * through sun.misc.Unsafe, which warns on JDK 25).
     */
    private record DirectAtLeast(int minBytes) implements tlschannel.BufferAllocator {
        @Override
        public java.nio.ByteBuffer allocate(int size) {
            return java.nio.ByteBuffer.allocateDirect(Math.max(size, minBytes));
        }

        @Override
        public void free(java.nio.ByteBuffer buffer) {
            // left to the GC
        }
    }

    /**
     * OpenSSL's engine says "General OpenSslEngine problem" and keeps the reason (our trust
     * manager's "certificate of node-r ... is revoked") as the cause: put it in the message, as the
     * JDK's engine does, so the refusal logged says why.
     */
    public static SSLException explained(SSLException ex) {
        Throwable root = ex;
        while (root.getCause() != null && root.getCause() != root) {
            root = root.getCause();
        }
        if (root == ex || root.getMessage() == null || String.valueOf(ex.getMessage()).contains(root.getMessage())) {
            return ex;
        }
        String message = ex.getMessage() + ": " + root.getMessage();
        SSLException e = ex instanceof javax.net.ssl.SSLHandshakeException ? new javax.net.ssl.SSLHandshakeException(message)
                : new SSLException(message);
        e.initCause(ex);
        return e;
    }
}
