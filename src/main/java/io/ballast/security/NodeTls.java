package io.ballast.security;

import java.io.IOException;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.PrivateKey;
import java.security.cert.Certificate;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.time.Instant;
import java.time.InstantSource;
import java.util.List;
import java.util.Optional;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLPeerUnverifiedException;
import javax.net.ssl.SSLSession;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A node's TLS identity: the cluster CA it trusts, its own key and certificate (renewed in place), and
 * the one SSLContext every listener and client of the node is built from (REST, replication, Raft,
 * node-to-node calls). Made at start by {@link #bootstrap}, {@link #load} or {@link Enrollment}.
 */
public final class NodeTls implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(NodeTls.class);

    /** Signs a CSR for this node (locally if it holds the CA key, else through a member that does). */
    @FunctionalInterface
    public interface Signer {
        /** @return the signed certificate, PEM */
        String sign(String csrPem, List<String> addresses);
    }

    private final TlsDir dir;
    private final String nodeId;
    private final List<String> addresses;
    private final TlsSettings settings;
    private final InstantSource clock;
    private final X509Certificate ca;
    private final CertificateAuthority authority; // null unless this node holds the CA key
    private final NodeKeyManager keys;
    private final ClusterTrustManager trust;
    private final SSLContext context;
    private final SSLContext nbdContext;
    private volatile TlsEngines engines;
    private volatile Thread renewer;
    private volatile boolean closed;

    NodeTls(TlsDir dir, String nodeId, List<String> addresses, TlsSettings settings, InstantSource clock,
            X509Certificate ca, CertificateAuthority authority, PrivateKey nodeKey, X509Certificate nodeCert) {
        this.dir = dir;
        this.nodeId = nodeId;
        this.addresses = List.copyOf(addresses);
        this.settings = settings;
        this.clock = clock;
        this.ca = ca;
        this.authority = authority;
        this.keys = new NodeKeyManager(nodeKey, nodeCert, ca);
        this.trust = new ClusterTrustManager(ca);
        try {
            context = SSLContext.getInstance("TLS");
            context.init(new javax.net.ssl.KeyManager[] {keys}, new javax.net.ssl.TrustManager[] {trust}, null);
            ClusterTrustManager nbdTrust = new ClusterTrustManager(ca, false);
            nbdTrust.revokedAs(trust);
            nbdContext = SSLContext.getInstance("TLS");
            nbdContext.init(new javax.net.ssl.KeyManager[] {keys}, new javax.net.ssl.TrustManager[] {nbdTrust}, null);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("cannot build the node's TLS context", e);
        }
    }

    /**
     * An identity held in memory only (tools and tests): trusts {@code ca}, presents {@code cert};
     * cannot renew (no directory to keep a new key in).
     */
    public static NodeTls inMemory(String nodeId, X509Certificate ca, PrivateKey key, X509Certificate cert) {
        return new NodeTls(null, nodeId, List.of(), TlsSettings.secure(), InstantSource.system(), ca, null, key, cert);
    }

    /** First node of a new cluster: makes the CA (or imports the operator's) and signs its own certificate. */
    public static NodeTls bootstrap(TlsDir dir, String nodeId, List<String> addresses, TlsSettings s, InstantSource clock)
            throws IOException {
        CertificateAuthority ca;
        if (s.caCertFile() != null) {
            X509Certificate cert = TlsDir.readCert(s.caCertFile());
            PrivateKey key = TlsDir.readKey(s.caKeyFile());
            if (cert.getBasicConstraints() < 0) {
                throw new IOException(s.caCertFile() + " is not a CA certificate (no basicConstraints CA:true)");
            }
            ca = new CertificateAuthority(cert, key);
            log.atInfo().addKeyValue("caSha256", ca.fingerprint()).log("using the operator's CA");
        } else if (dir.hasCaKey() && java.nio.file.Files.exists(dir.caCert())) {
            ca = new CertificateAuthority(dir.readCaCert(), dir.readCaKey());
        } else {
            ca = CertificateAuthority.create("Ballast cluster CA " + nodeId, clock.instant(), TlsSettings.CA_LIFETIME);
            log.atInfo().addKeyValue("caSha256", ca.fingerprint()).log("created the cluster CA");
        }
        dir.write(dir.caKey(), Pem.encode(ca.privateKey()));
        dir.write(dir.caCert(), Pem.encode(ca.certificate()));
        KeyPair kp = CertificateAuthority.newKeyPair();
        X509Certificate cert = ca.sign(CertificateAuthority.csr(nodeId, kp), nodeId, addresses, clock.instant(), s.certLifetime());
        dir.write(dir.nodeKey(), Pem.encode(kp.getPrivate()));
        dir.write(dir.nodeCert(), Pem.encode(cert));
        return new NodeTls(dir, nodeId, addresses, s, clock, ca.certificate(), ca, kp.getPrivate(), cert);
    }

    /** A restart: what DATA/tls holds. An expired certificate is re-signed here if this node holds the CA key. */
    public static NodeTls load(TlsDir dir, String nodeId, List<String> addresses, TlsSettings s, InstantSource clock)
            throws IOException {
        X509Certificate ca = dir.readCaCert();
        CertificateAuthority authority = dir.hasCaKey() ? new CertificateAuthority(ca, dir.readCaKey()) : null;
        PrivateKey key = dir.readNodeKey();
        X509Certificate cert = dir.readNodeCert();
        if (!nodeId.equals(CertificateAuthority.nodeIdOf(cert))) {
            throw new IOException(dir.nodeCert() + " names node " + CertificateAuthority.nodeIdOf(cert) + ", not " + nodeId);
        }
        NodeTls t = new NodeTls(dir, nodeId, addresses, s, clock, ca, authority, key, cert);
        if (!clock.instant().isBefore(cert.getNotAfter().toInstant()) && authority != null) {
            t.renew((csr, a) -> Pem.encode(authority.sign(Pem.csr(csr), nodeId, a, clock.instant(), s.certLifetime())));
        } else if (!clock.instant().isBefore(cert.getNotAfter().toInstant())) {
            log.atWarn().addKeyValue("notAfter", cert.getNotAfter().toInstant().toString())
                    .log("this node's certificate has expired; other nodes will refuse it until it is renewed");
        }
        return t;
    }

    public String nodeId() {
        return nodeId;
    }

    public SSLContext context() {
        return context;
    }

    /**
     * Engines for the replication port (OpenSSL when it loads, else the JDK's; {@link TlsEngines}),
     * on this node's key manager and members-only trust manager. Built on first use.
     */
    public TlsEngines engines() {
        TlsEngines e = engines;
        if (e == null) {
            synchronized (this) {
                e = engines;
                if (e == null) {
                    e = TlsEngines.of(keys, trust, context);
                    engines = e;
                }
            }
        }
        return e;
    }

    /**
     * For the NBD listener (docs/nbd.md, "TLS"): this node's certificate, and clients whose certificate
     * the cluster CA signed, members or NBD clients ({@code ballast auth nbd-client-cert}).
     */
    public SSLContext nbdContext() {
        return nbdContext;
    }

    /** Signs an NBD client certificate; only on a node with the CA key. Returns PEM. */
    public String signNbdClientCsr(String csrPem, String clientName, Duration lifetime) {
        if (authority == null) {
            throw new IllegalStateException("this node does not hold the cluster CA key");
        }
        X509Certificate c = authority.signNbdClient(Pem.csr(csrPem), clientName, clock.instant(), lifetime);
        log.atInfo().addKeyValue("client", clientName).addKeyValue("serial", c.getSerialNumber().toString(16))
                .addKeyValue("notAfter", c.getNotAfter().toInstant().toString()).log("signed an NBD client certificate");
        return Pem.encode(c);
    }

    public X509Certificate ca() {
        return ca;
    }

    public String caFingerprint() {
        return Fingerprint.sha256(ca);
    }

    public X509Certificate certificate() {
        return keys.certificate();
    }

    public ClusterTrustManager trust() {
        return trust;
    }

    public NodeKeyManager keys() {
        return keys;
    }

    public TlsDir dir() {
        return dir;
    }

    public List<String> addresses() {
        return addresses;
    }

    public TlsSettings settings() {
        return settings;
    }

    /** The CA, if this node holds its key (it can sign joins and renewals). */
    public Optional<CertificateAuthority> authority() {
        return Optional.ofNullable(authority);
    }

    /** Signs a node certificate from a CSR; only on a node with the CA key. */
    public String signCsr(String csrPem, String forNodeId, List<String> forAddresses) {
        if (authority == null) {
            throw new IllegalStateException("this node does not hold the cluster CA key");
        }
        X509Certificate c = authority.sign(Pem.csr(csrPem), forNodeId, forAddresses == null ? List.of() : forAddresses,
                clock.instant(), settings.certLifetime());
        log.atInfo().addKeyValue("nodeId", forNodeId).addKeyValue("serial", c.getSerialNumber().toString(16))
                .addKeyValue("notAfter", c.getNotAfter().toInstant().toString()).log("signed a node certificate");
        return Pem.encode(c);
    }

    /** The node id of the verified peer of a TLS session (its certificate's CN), or null if it sent none. */
    public static String peerNodeId(SSLSession session) {
        try {
            Certificate[] chain = session.getPeerCertificates();
            return chain.length > 0 && chain[0] instanceof X509Certificate x ? CertificateAuthority.nodeIdOf(x) : null;
        } catch (SSLPeerUnverifiedException e) {
            return null;
        }
    }

    /** When the current certificate should be renewed: at 2/3 of its life. */
    public Instant renewAt() {
        X509Certificate c = keys.certificate();
        Instant from = c.getNotBefore().toInstant().plus(CertificateAuthority.BACKDATE);
        Duration life = Duration.between(from, c.getNotAfter().toInstant());
        return from.plus(life.multipliedBy(2).dividedBy(3));
    }

    /** A new key and certificate, signed by {@code signer}; swapped in for every new handshake. */
    public synchronized void renew(Signer signer) throws IOException {
        KeyPair kp = CertificateAuthority.newKeyPair();
        String certPem = signer.sign(Pem.encode(CertificateAuthority.csr(nodeId, kp)), addresses);
        X509Certificate cert = Pem.certificate(certPem);
        if (!cert.getPublicKey().equals(kp.getPublic()) || !nodeId.equals(CertificateAuthority.nodeIdOf(cert))) {
            throw new IOException("the signed certificate is not for this node's new key");
        }
        try {
            cert.verify(ca.getPublicKey());
        } catch (GeneralSecurityException e) {
            throw new IOException("the signed certificate is not from the cluster CA: " + e.getMessage(), e);
        }
        dir.write(dir.nodeKey(), Pem.encode(kp.getPrivate()));
        dir.write(dir.nodeCert(), certPem);
        keys.update(kp.getPrivate(), cert, ca);
        log.atInfo().addKeyValue("serial", cert.getSerialNumber().toString(16))
                .addKeyValue("notAfter", cert.getNotAfter().toInstant().toString()).log("node certificate renewed");
    }

    /** Renews in the background at 2/3 of each certificate's life (retrying every checkMs on failure). */
    public void startRenewal(Signer signer) {
        long checkMs = Math.max(1000, Math.min(Duration.ofMinutes(10).toMillis(), settings.certLifetime().toMillis() / 20));
        renewer = Thread.ofVirtual().name("ballast-cert-renewal").start(() -> {
            while (!closed) {
                try {
                    Thread.sleep(checkMs);
                } catch (InterruptedException e) {
                    return;
                }
                if (closed || clock.instant().isBefore(renewAt())) {
                    continue;
                }
                try {
                    renew(signer);
                } catch (IOException | RuntimeException e) {
                    log.atWarn().log("renewing the node certificate failed (retrying): {}", e.getMessage());
                }
            }
        });
    }

    @Override
    public void close() {
        closed = true;
        Thread t = renewer;
        if (t != null) {
            t.interrupt();
        }
    }
}
