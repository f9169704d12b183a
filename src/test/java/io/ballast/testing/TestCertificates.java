package io.ballast.testing;

import java.io.IOException;
import java.io.StringWriter;
import java.math.BigInteger;
import java.net.InetAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.KeyStore;
import java.security.SecureRandom;
import java.security.cert.X509Certificate;
import java.security.spec.ECGenParameterSpec;
import java.time.Duration;
import java.time.Instant;
import java.util.Date;
import java.util.concurrent.atomic.AtomicLong;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;
import javax.security.auth.x500.X500Principal;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.ExtendedKeyUsage;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.asn1.x509.KeyPurposeId;
import org.bouncycastle.asn1.x509.KeyUsage;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509ExtensionUtils;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.openssl.jcajce.JcaPEMWriter;
import org.bouncycastle.operator.OperatorCreationException;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;

/**
 * Throwaway X.509 certificates for TLS tests (Bouncy Castle, ECDSA P-256): a CA, server and client
 * certificates it signs (valid or expired), and the PEM directories libnbd ({@code
 * tls-certificates=DIR}: ca-cert.pem, client-cert.pem, client-key.pem) and the NBD server
 * (ca-cert.pem, server-cert.pem, server-key.pem) read.
 */
public final class TestCertificates {
    private static final AtomicLong SERIAL = new AtomicLong(System.currentTimeMillis());

    /** A certificate and its key pair. */
    public record Issued(X509Certificate certificate, KeyPair keys) {}

    /** A certificate authority: its own certificate and the key it signs with. */
    public record Ca(Issued self) {
        public X509Certificate certificate() {
            return self.certificate();
        }

        /** A server certificate for localhost and 127.0.0.1, valid for a day. */
        public Issued server(String commonName) throws GeneralSecurityException {
            Instant now = Instant.now();
            return sign(commonName, false, true, now.minus(Duration.ofHours(1)), now.plus(Duration.ofDays(1)));
        }

        /** A client certificate valid from {@code notBefore} to {@code notAfter}. */
        public Issued client(String commonName, Instant notBefore, Instant notAfter) throws GeneralSecurityException {
            return sign(commonName, false, false, notBefore, notAfter);
        }

        /** A client certificate valid for a day. */
        public Issued client(String commonName) throws GeneralSecurityException {
            Instant now = Instant.now();
            return client(commonName, now.minus(Duration.ofHours(1)), now.plus(Duration.ofDays(1)));
        }

        private Issued sign(String commonName, boolean ca, boolean server, Instant notBefore, Instant notAfter)
                throws GeneralSecurityException {
            return issue(commonName, self, ca, server, notBefore, notAfter);
        }
    }

    private TestCertificates() {}

    public static Ca newCa(String commonName) throws GeneralSecurityException {
        Instant now = Instant.now();
        return new Ca(issue(commonName, null, true, false, now.minus(Duration.ofHours(1)), now.plus(Duration.ofDays(30))));
    }

    private static Issued issue(String commonName, Issued issuer, boolean ca, boolean server,
            Instant notBefore, Instant notAfter) throws GeneralSecurityException {
        KeyPairGenerator gen = KeyPairGenerator.getInstance("EC");
        gen.initialize(new ECGenParameterSpec("secp256r1"));
        KeyPair keys = gen.generateKeyPair();
        X500Principal subject = new X500Principal("CN=" + commonName + ",O=Ballast test");
        X500Principal issuerName = issuer == null ? subject : issuer.certificate().getSubjectX500Principal();
        KeyPair signer = issuer == null ? keys : issuer.keys();
        try {
            JcaX509ExtensionUtils ext = new JcaX509ExtensionUtils();
            JcaX509v3CertificateBuilder b = new JcaX509v3CertificateBuilder(issuerName,
                    BigInteger.valueOf(SERIAL.incrementAndGet()), Date.from(notBefore), Date.from(notAfter),
                    subject, keys.getPublic());
            b.addExtension(Extension.subjectKeyIdentifier, false, ext.createSubjectKeyIdentifier(keys.getPublic()));
            b.addExtension(Extension.authorityKeyIdentifier, false,
                    ext.createAuthorityKeyIdentifier(signer.getPublic()));
            if (ca) {
                b.addExtension(Extension.basicConstraints, true, new BasicConstraints(true));
                b.addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.keyCertSign | KeyUsage.cRLSign));
            } else {
                b.addExtension(Extension.basicConstraints, true, new BasicConstraints(false));
                b.addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.digitalSignature));
                b.addExtension(Extension.extendedKeyUsage, false,
                        new ExtendedKeyUsage(server ? KeyPurposeId.id_kp_serverAuth : KeyPurposeId.id_kp_clientAuth));
                if (server) {
                    b.addExtension(Extension.subjectAlternativeName, false, new GeneralNames(new GeneralName[] {
                        new GeneralName(GeneralName.dNSName, "localhost"),
                        new GeneralName(GeneralName.iPAddress, InetAddress.getLoopbackAddress().getHostAddress())}));
                }
            }
            X509Certificate cert = new JcaX509CertificateConverter().getCertificate(
                    b.build(new JcaContentSignerBuilder("SHA256withECDSA").build(signer.getPrivate())));
            return new Issued(cert, keys);
        } catch (OperatorCreationException | IOException e) {
            throw new GeneralSecurityException(e);
        }
    }

    /** ca-cert.pem, server-cert.pem, server-key.pem (0600) in {@code dir}: what the NBD server reads. */
    public static Path writeServerDir(Path dir, Ca ca, Issued server) throws IOException {
        Files.createDirectories(dir);
        writePem(dir.resolve("ca-cert.pem"), ca.certificate());
        writePem(dir.resolve("server-cert.pem"), server.certificate());
        writeKey(dir.resolve("server-key.pem"), server);
        return dir;
    }

    /**
     * ca-cert.pem (the CA that signed the server) and, unless {@code client} is null, client-cert.pem
     * and client-key.pem: libnbd's {@code tls-certificates=DIR}.
     */
    public static Path writeClientDir(Path dir, X509Certificate serverCa, Issued client) throws IOException {
        Files.createDirectories(dir);
        writePem(dir.resolve("ca-cert.pem"), serverCa);
        if (client != null) {
            writePem(dir.resolve("client-cert.pem"), client.certificate());
            writeKey(dir.resolve("client-key.pem"), client);
        }
        return dir;
    }

    /** A JDK client context trusting {@code serverCa}, presenting {@code client} (null: no certificate). */
    public static SSLContext clientContext(X509Certificate serverCa, Issued client) throws GeneralSecurityException {
        try {
            KeyStore trust = KeyStore.getInstance("PKCS12");
            trust.load(null, null);
            trust.setCertificateEntry("ca", serverCa);
            TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
            tmf.init(trust);
            KeyManagerFactory kmf = null;
            if (client != null) {
                KeyStore keys = KeyStore.getInstance("PKCS12");
                keys.load(null, null);
                keys.setKeyEntry("client", client.keys().getPrivate(), new char[0],
                        new X509Certificate[] {client.certificate()});
                kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
                kmf.init(keys, new char[0]);
            }
            SSLContext ctx = SSLContext.getInstance("TLS");
            ctx.init(kmf == null ? null : kmf.getKeyManagers(), tmf.getTrustManagers(), new SecureRandom());
            return ctx;
        } catch (IOException e) {
            throw new GeneralSecurityException(e);
        }
    }

    private static void writePem(Path file, Object o) throws IOException {
        StringWriter s = new StringWriter();
        try (JcaPEMWriter w = new JcaPEMWriter(s)) {
            w.writeObject(o);
        }
        Files.writeString(file, s.toString());
    }

    private static void writeKey(Path file, Issued issued) throws IOException {
        Files.deleteIfExists(file);
        Files.createFile(file, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
        // with the public key inside, as GnuTLS (libnbd) wants it: the node writes its keys the same way
        Files.writeString(file, io.ballast.security.Pem.encodeEcKeyWithPublic(issued.keys()));
    }
}