package io.ballast.security;

import io.ballast.common.TlsEngines;
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
    /** Signs joins and renewals: null unless this node holds the CA key; the new CA's from a rotation's re-issue phase. */
    private volatile CertificateAuthority authority;
    /** The new CA of a rotation this node started (it holds its key), until the rotation ends. */
    private volatile CertificateAuthority nextAuthority;
    private final NodeKeyManager keys;
    private final ClusterTrustManager trust;
    private final ClusterTrustManager nbdTrust;
    private final SSLContext context;
    private final SSLContext nbdContext;
    private volatile TlsEngines engines;
    private volatile Thread renewer;
    private volatile Signer signer;
    private volatile boolean closed;

    NodeTls(TlsDir dir, String nodeId, List<String> addresses, TlsSettings settings, InstantSource clock,
            X509Certificate ca, CertificateAuthority authority, PrivateKey nodeKey, X509Certificate nodeCert) {
        this(dir, nodeId, addresses, settings, clock, List.of(ca), authority, null, nodeKey, nodeCert);
    }

    NodeTls(TlsDir dir, String nodeId, List<String> addresses, TlsSettings settings, InstantSource clock,
            List<X509Certificate> cas, CertificateAuthority authority, CertificateAuthority nextAuthority, PrivateKey nodeKey,
            X509Certificate nodeCert) {
        this.dir = dir;
        this.nodeId = nodeId;
        this.addresses = List.copyOf(addresses);
        this.settings = settings;
        this.clock = clock;
        this.authority = authority;
        this.nextAuthority = nextAuthority;
        this.keys = new NodeKeyManager(nodeKey, nodeCert, issuerOf(nodeCert, cas));
        this.trust = new ClusterTrustManager(cas);
        this.nbdTrust = new ClusterTrustManager(cas, false);
        try {
            context = SSLContext.getInstance("TLS");
            context.init(new javax.net.ssl.KeyManager[] {keys}, new javax.net.ssl.TrustManager[] {trust}, null);
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
        List<X509Certificate> cas = dir.readCaCerts();
        CertificateAuthority authority = null;
        if (dir.hasCaKey()) {
            PrivateKey caKey = dir.readCaKey();
            // the CA whose key this is (ca.crt holds two during a rotation); a key no trusted CA matches signs nothing
            authority = cas.stream().filter(c -> keyMatches(c, caKey)).findFirst().map(c -> new CertificateAuthority(c, caKey))
                    .orElse(null);
        }
        CertificateAuthority next = null;
        if (java.nio.file.Files.exists(dir.caNextCert()) && java.nio.file.Files.exists(dir.caNextKey())) {
            next = new CertificateAuthority(TlsDir.readCert(dir.caNextCert()), TlsDir.readKey(dir.caNextKey()));
        }
        PrivateKey key = dir.readNodeKey();
        X509Certificate cert = dir.readNodeCert();
        if (!nodeId.equals(CertificateAuthority.nodeIdOf(cert))) {
            throw new IOException(dir.nodeCert() + " names node " + CertificateAuthority.nodeIdOf(cert) + ", not " + nodeId);
        }
        NodeTls t = new NodeTls(dir, nodeId, addresses, s, clock, cas, authority, next, key, cert);
        CertificateAuthority signer = authority;
        if (!clock.instant().isBefore(cert.getNotAfter().toInstant()) && authority != null) {
            t.renew((csr, a) -> Pem.encode(signer.sign(Pem.csr(csr), nodeId, a, clock.instant(), s.certLifetime())));
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
     * Trusts the cluster CAs (following a rotation) and presents no certificate: for calls a node makes
     * with a user's token on that user's behalf.
     */
    public SSLContext callerContext() {
        SSLContext c = callerContext;
        if (c == null) {
            try {
                c = SSLContext.getInstance("TLS");
                c.init(null, new javax.net.ssl.TrustManager[] {trust}, null);
            } catch (GeneralSecurityException e) {
                throw new IllegalStateException("cannot build a TLS context", e);
            }
            callerContext = c;
        }
        return c;
    }

    private volatile SSLContext callerContext;

    /**
     * For the NBD listener (docs/nbd.md, "TLS"): this node's certificate, and clients whose certificate
     * the cluster CA signed, members or NBD clients ({@code ballast auth nbd-client-cert}).
     */
    public SSLContext nbdContext() {
        return nbdContext;
    }

    /** {@link #nbdContext()}'s identity and trust on the node's TLS engine ({@link TlsEngines}). Built on first use. */
    public TlsEngines nbdEngines() {
        TlsEngines e = nbdEngines;
        if (e == null) {
            synchronized (this) {
                e = nbdEngines;
                if (e == null) {
                    e = TlsEngines.of(TlsEngines.preferred(), keys, nbdTrust, nbdContext, "nbd");
                    nbdEngines = e;
                }
            }
        }
        return e;
    }

    private volatile TlsEngines nbdEngines;

    /** Signs an NBD client certificate; only on a node with the CA key. Returns PEM. */
    public String signNbdClientCsr(String csrPem, String clientName, Duration lifetime) {
        CertificateAuthority authority = this.authority;
        if (authority == null) {
            throw new IllegalStateException("this node does not hold the cluster CA key");
        }
        X509Certificate c = authority.signNbdClient(Pem.csr(csrPem), clientName, clock.instant(), lifetime);
        log.atInfo().addKeyValue("client", clientName).addKeyValue("serial", c.getSerialNumber().toString(16))
                .addKeyValue("notAfter", c.getNotAfter().toInstant().toString()).log("signed an NBD client certificate");
        return Pem.encode(c);
    }

    /** The CA that signed this node's current certificate (what its join token pins). */
    public X509Certificate ca() {
        return issuerOf(keys.certificate(), trust.cas());
    }

    public String caFingerprint() {
        return Fingerprint.sha256(ca());
    }

    /** Every CA this node trusts now: one, or the old and the new during a CA rotation. */
    public List<X509Certificate> trustedCas() {
        return trust.cas();
    }

    /** The CA that signs here now (joins, renewals), if this node holds a CA key. */
    public Optional<X509Certificate> signingCa() {
        CertificateAuthority a = authority;
        return a == null ? Optional.empty() : Optional.of(a.certificate());
    }

    /** The new CA of a rotation this node started and whose key it holds, until the rotation ends. */
    public Optional<X509Certificate> nextCa() {
        CertificateAuthority a = nextAuthority;
        return a == null ? Optional.empty() : Optional.of(a.certificate());
    }

    /**
     * Trusts exactly {@code cas} from the next handshake on, on every port (REST, Raft, replication,
     * NBD), and keeps them in {@code ca.crt} for a restart. Open connections continue.
     */
    public synchronized void trust(List<X509Certificate> cas) throws IOException {
        if (cas.equals(trust.cas())) {
            return;
        }
        if (dir != null) {
            dir.write(dir.caCert(), Pem.encode(cas.toArray()));
        }
        trust.trust(cas);
        nbdTrust.trust(cas);
        log.atInfo().addKeyValue("caSha256", cas.stream().map(Fingerprint::sha256).toList().toString()).log("trusting the cluster CAs");
    }

    /**
     * Rotation, phase 1 on the node that starts it: keeps the new CA and its key in {@code ca-next.*}
     * (0600) and trusts it beside the old. This node signs with it once the rotation reaches phase 2.
     */
    public synchronized void beginRotation(CertificateAuthority next) throws IOException {
        if (authority == null) {
            throw new IllegalStateException("this node does not hold the cluster CA key");
        }
        dir.write(dir.caNextKey(), Pem.encode(next.privateKey()));
        dir.write(dir.caNextCert(), Pem.encode(next.certificate()));
        nextAuthority = next;
        java.util.ArrayList<X509Certificate> cas = new java.util.ArrayList<>(trust.cas());
        if (!cas.contains(next.certificate())) {
            cas.add(next.certificate());
        }
        trust(cas);
    }

    /** A rotation whose start was not committed: trust and files as before it. */
    public synchronized void abortRotation(X509Certificate newCa) throws IOException {
        java.util.ArrayList<X509Certificate> cas = new java.util.ArrayList<>(trust.cas());
        cas.remove(newCa);
        trust(cas);
        java.nio.file.Files.deleteIfExists(dir.caNextKey());
        java.nio.file.Files.deleteIfExists(dir.caNextCert());
        nextAuthority = null;
    }

    /** Rotation, phase 2: joins and renewals signed here are signed by the new CA (its key held here). */
    public synchronized void signWithNext() {
        CertificateAuthority next = nextAuthority;
        if (next != null && authority != next) {
            authority = next;
            log.atInfo().addKeyValue("caSha256", next.fingerprint()).log("signing node certificates with the new cluster CA");
        }
    }

    /**
     * Rotation, phase 3: trusts {@code newCa} alone; the node holding its key keeps it as {@code ca.key};
     * a node holding only the old CA's key deletes it (the old CA signs nothing trusted any more).
     */
    public synchronized void finishRotation(X509Certificate newCa) throws IOException {
        trust(List.of(newCa));
        CertificateAuthority next = nextAuthority;
        if (next != null && next.certificate().equals(newCa)) {
            dir.write(dir.caKey(), Pem.encode(next.privateKey()));
            java.nio.file.Files.deleteIfExists(dir.caNextKey());
            java.nio.file.Files.deleteIfExists(dir.caNextCert());
            authority = next;
            nextAuthority = null;
            log.atInfo().addKeyValue("caSha256", next.fingerprint()).log("the new cluster CA's key is now DATA/tls/ca.key");
        } else {
            CertificateAuthority a = authority;
            if (a != null && !a.certificate().equals(newCa)) {
                authority = null;
                if (dir != null) {
                    java.nio.file.Files.deleteIfExists(dir.caKey());
                }
                log.atInfo().log("deleted the old cluster CA's key: the rotated cluster no longer trusts it");
            }
        }
    }

    /** Whether this node's certificate was signed by {@code ca}. */
    public boolean certificateFrom(X509Certificate ca) {
        return signedBy(keys.certificate(), ca);
    }

    static boolean signedBy(X509Certificate cert, X509Certificate ca) {
        if (!cert.getIssuerX500Principal().equals(ca.getSubjectX500Principal())) {
            return false;
        }
        try {
            cert.verify(ca.getPublicKey());
            return true;
        } catch (GeneralSecurityException e) {
            return false;
        }
    }

    /** The CA of {@code cas} that signed {@code cert}; the first if none did (the handshake's check fails then). */
    public static X509Certificate issuerOf(X509Certificate cert, List<X509Certificate> cas) {
        return cas.stream().filter(c -> signedBy(cert, c)).findFirst().orElse(cas.get(0));
    }

    /** Whether {@code key} is the private key of {@code cert}'s public key (a test signature). */
    public static boolean keyMatches(X509Certificate cert, PrivateKey key) {
        try {
            String alg = "EC".equals(key.getAlgorithm()) ? "SHA256withECDSA" : "SHA256withRSA";
            java.security.Signature sig = java.security.Signature.getInstance(alg);
            sig.initSign(key);
            byte[] probe = "ballast-ca-key-check".getBytes(java.nio.charset.StandardCharsets.US_ASCII);
            sig.update(probe);
            byte[] signed = sig.sign();
            sig.initVerify(cert.getPublicKey());
            sig.update(probe);
            return sig.verify(signed);
        } catch (GeneralSecurityException e) {
            return false;
        }
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
        CertificateAuthority authority = this.authority;
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
        List<X509Certificate> cas = trust.cas();
        X509Certificate issuer = issuerOf(cert, cas);
        if (!signedBy(cert, issuer)) {
            throw new IOException("the signed certificate is not from a cluster CA this node trusts");
        }
        dir.write(dir.nodeKey(), Pem.encode(kp.getPrivate()));
        dir.write(dir.nodeCert(), certPem);
        keys.update(kp.getPrivate(), cert, issuer);
        log.atInfo().addKeyValue("serial", cert.getSerialNumber().toString(16))
                .addKeyValue("notAfter", cert.getNotAfter().toInstant().toString())
                .addKeyValue("caSha256", Fingerprint.sha256(issuer)).log("node certificate renewed");
    }

    /** Renews now with the signer {@link #startRenewal} was given (CA rotation, phase 2). */
    public void renewNow() throws IOException {
        Signer s = signer;
        if (s == null) {
            throw new IOException("certificate renewal is not running on this node yet");
        }
        renew(s);
    }

    /** Renews in the background at 2/3 of each certificate's life (retrying every checkMs on failure). */
    public void startRenewal(Signer signer) {
        this.signer = signer;
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
