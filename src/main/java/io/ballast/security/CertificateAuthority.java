package io.ballast.security;

import java.math.BigInteger;
import java.net.InetAddress;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.SecureRandom;
import java.security.cert.X509Certificate;
import java.security.spec.ECGenParameterSpec;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Date;
import java.util.List;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x500.X500NameBuilder;
import org.bouncycastle.asn1.x500.style.BCStyle;
import org.bouncycastle.asn1.x500.style.IETFUtils;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.ExtendedKeyUsage;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.asn1.x509.KeyPurposeId;
import org.bouncycastle.asn1.x509.KeyUsage;
import org.bouncycastle.cert.X509v3CertificateBuilder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509ExtensionUtils;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.operator.ContentSigner;
import org.bouncycastle.operator.OperatorCreationException;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;
import org.bouncycastle.operator.jcajce.JcaContentVerifierProviderBuilder;
import org.bouncycastle.pkcs.PKCS10CertificationRequest;
import org.bouncycastle.pkcs.PKCS10CertificationRequestBuilder;
import org.bouncycastle.pkcs.PKCSException;
import org.bouncycastle.pkcs.jcajce.JcaPKCS10CertificationRequest;
import org.bouncycastle.pkcs.jcajce.JcaPKCS10CertificationRequestBuilder;

/**
 * The cluster CA: makes itself (ECDSA P-256, self-signed) and signs node certificates from CSRs.
 * A node certificate names the node id as its CN and first DNS SAN, plus the node's addresses, and is
 * good for client and server use (every node both serves and calls).
 */
public final class CertificateAuthority {
    private static final SecureRandom RANDOM = new SecureRandom();
    /** Node certificates start a little in the past: clocks of nodes differ slightly. */
    static final Duration BACKDATE = Duration.ofMinutes(1);

    private final X509Certificate cert;
    private final PrivateKey key;

    public CertificateAuthority(X509Certificate cert, PrivateKey key) {
        this.cert = cert;
        this.key = key;
    }

    public X509Certificate certificate() {
        return cert;
    }

    public PrivateKey privateKey() {
        return key;
    }

    public String fingerprint() {
        return Fingerprint.sha256(cert);
    }

    public static KeyPair newKeyPair() {
        try {
            KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
            g.initialize(new ECGenParameterSpec("secp256r1"), RANDOM);
            return g.generateKeyPair();
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("cannot generate an EC P-256 key", e);
        }
    }

    /** A new self-signed CA valid for {@code lifetime} from {@code now}. */
    public static CertificateAuthority create(String name, Instant now, Duration lifetime) {
        KeyPair kp = newKeyPair();
        X500Name subject = new X500NameBuilder(BCStyle.INSTANCE).addRDN(BCStyle.O, "Ballast").addRDN(BCStyle.CN, name).build();
        try {
            JcaX509ExtensionUtils ext = new JcaX509ExtensionUtils();
            X509v3CertificateBuilder b = new JcaX509v3CertificateBuilder(subject, serial(), Date.from(now.minus(BACKDATE)),
                    Date.from(now.plus(lifetime)), subject, kp.getPublic())
                    .addExtension(Extension.basicConstraints, true, new BasicConstraints(0))
                    .addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.keyCertSign | KeyUsage.cRLSign))
                    .addExtension(Extension.subjectKeyIdentifier, false, ext.createSubjectKeyIdentifier(kp.getPublic()));
            return new CertificateAuthority(toCert(b, kp.getPrivate()), kp.getPrivate());
        } catch (GeneralSecurityException | java.io.IOException e) {
            throw new IllegalStateException("cannot create the cluster CA", e);
        }
    }

    /** A CSR for {@code nodeId} (CN), signed with the node's own key, which never leaves the node. */
    public static PKCS10CertificationRequest csr(String nodeId, KeyPair kp) {
        PKCS10CertificationRequestBuilder b = new JcaPKCS10CertificationRequestBuilder(nodeName(nodeId), kp.getPublic());
        try {
            return b.build(signer(kp.getPrivate()));
        } catch (OperatorCreationException e) {
            throw new IllegalStateException("cannot sign a CSR", e);
        }
    }

    /**
     * Signs a node certificate for {@code nodeId}. The CSR must be self-signed by its key and name that
     * node (the caller already decided the requester may have that name).
     */
    public X509Certificate sign(PKCS10CertificationRequest csr, String nodeId, List<String> addresses, Instant now,
            Duration lifetime) {
        try {
            if (!csr.isSignatureValid(new JcaContentVerifierProviderBuilder().build(csr.getSubjectPublicKeyInfo()))) {
                throw new IllegalArgumentException("the certificate request's signature does not verify");
            }
        } catch (OperatorCreationException | PKCSException e) {
            throw new IllegalArgumentException("unreadable certificate request: " + e.getMessage(), e);
        }
        String cn = commonName(csr.getSubject());
        if (!nodeId.equals(cn)) {
            throw new IllegalArgumentException("the certificate request names '" + cn + "', not node " + nodeId);
        }
        try {
            PublicKey pub = new JcaPKCS10CertificationRequest(csr).getPublicKey();
            List<GeneralName> sans = new ArrayList<>();
            sans.add(new GeneralName(GeneralName.dNSName, nodeId));
            for (String a : addresses) {
                sans.add(isIp(a) ? new GeneralName(GeneralName.iPAddress, a) : new GeneralName(GeneralName.dNSName, a));
            }
            JcaX509ExtensionUtils ext = new JcaX509ExtensionUtils();
            X509v3CertificateBuilder b = new JcaX509v3CertificateBuilder(cert, serial(), Date.from(now.minus(BACKDATE)),
                    Date.from(now.plus(lifetime)), nodeName(nodeId), pub)
                    .addExtension(Extension.basicConstraints, true, new BasicConstraints(false))
                    .addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.digitalSignature | KeyUsage.keyAgreement))
                    .addExtension(Extension.extendedKeyUsage, false,
                            new ExtendedKeyUsage(new KeyPurposeId[] {KeyPurposeId.id_kp_serverAuth, KeyPurposeId.id_kp_clientAuth}))
                    .addExtension(Extension.subjectAlternativeName, false, new GeneralNames(sans.toArray(GeneralName[]::new)))
                    .addExtension(Extension.authorityKeyIdentifier, false, ext.createAuthorityKeyIdentifier(cert));
            return toCert(b, key);
        } catch (GeneralSecurityException | java.io.IOException e) {
            throw new IllegalStateException("cannot sign a node certificate", e);
        }
    }

    /** The CN prefix of NBD client certificates; ':' cannot occur in a node id, so no client is named like a member. */
    public static final String NBD_CLIENT_PREFIX = CertificateNames.NBD_CLIENT_PREFIX;

    /**
     * Signs an NBD client certificate for {@code clientName}: CN {@value #NBD_CLIENT_PREFIX}NAME, client
     * use only (no serverAuth), no addresses. The NBD listeners take it; the members' ports refuse it
     * ({@link #isMemberCertificate}). The CSR's key is the client's; its subject is not trusted.
     */
    public X509Certificate signNbdClient(PKCS10CertificationRequest csr, String clientName, Instant now, Duration lifetime) {
        try {
            if (!csr.isSignatureValid(new JcaContentVerifierProviderBuilder().build(csr.getSubjectPublicKeyInfo()))) {
                throw new IllegalArgumentException("the certificate request's signature does not verify");
            }
        } catch (OperatorCreationException | PKCSException e) {
            throw new IllegalArgumentException("unreadable certificate request: " + e.getMessage(), e);
        }
        try {
            PublicKey pub = new JcaPKCS10CertificationRequest(csr).getPublicKey();
            JcaX509ExtensionUtils ext = new JcaX509ExtensionUtils();
            X509v3CertificateBuilder b = new JcaX509v3CertificateBuilder(cert, serial(), Date.from(now.minus(BACKDATE)),
                    Date.from(now.plus(lifetime)), nodeName(NBD_CLIENT_PREFIX + clientName), pub)
                    .addExtension(Extension.basicConstraints, true, new BasicConstraints(false))
                    .addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.digitalSignature | KeyUsage.keyAgreement))
                    .addExtension(Extension.extendedKeyUsage, false, new ExtendedKeyUsage(KeyPurposeId.id_kp_clientAuth))
                    .addExtension(Extension.authorityKeyIdentifier, false, ext.createAuthorityKeyIdentifier(cert));
            return toCert(b, key);
        } catch (GeneralSecurityException | java.io.IOException e) {
            throw new IllegalStateException("cannot sign an NBD client certificate", e);
        }
    }

    /** A member's certificate is for server and client use; an NBD client's for client use only. */
    public static boolean isMemberCertificate(X509Certificate c) {
        return CertificateNames.isMemberCertificate(c);
    }

    /** When a certificate was issued (its notBefore is set back by {@link #BACKDATE} for clock skew). */
    public static Instant issuedAt(X509Certificate c) {
        return c.getNotBefore().toInstant().plus(BACKDATE);
    }

    /** The node id a node certificate names (its CN), or null. */
    public static String nodeIdOf(X509Certificate c) {
        return CertificateNames.nodeIdOf(c);
    }

    /** The CN of a certificate request's subject (a CSR is parsed by Bouncy Castle anyway). */
    private static String commonName(X500Name name) {
        var rdns = name.getRDNs(BCStyle.CN);
        return rdns.length == 0 ? null : IETFUtils.valueToString(rdns[0].getFirst().getValue());
    }

    private static X500Name nodeName(String nodeId) {
        return new X500NameBuilder(BCStyle.INSTANCE).addRDN(BCStyle.O, "Ballast").addRDN(BCStyle.CN, nodeId).build();
    }

    private static boolean isIp(String a) {
        return a.matches("[0-9.]+") || a.contains(":");
    }

    private static BigInteger serial() {
        return new BigInteger(127, RANDOM).add(BigInteger.ONE);
    }

    private static ContentSigner signer(PrivateKey key) throws OperatorCreationException {
        String alg = "EC".equals(key.getAlgorithm()) || "ECDSA".equals(key.getAlgorithm()) ? "SHA256withECDSA" : "SHA256withRSA";
        return new JcaContentSignerBuilder(alg).build(key);
    }

    private static X509Certificate toCert(X509v3CertificateBuilder b, PrivateKey signingKey) throws GeneralSecurityException {
        try {
            return new JcaX509CertificateConverter().getCertificate(b.build(signer(signingKey)));
        } catch (OperatorCreationException e) {
            throw new GeneralSecurityException(e);
        }
    }

    /** Whether this host's name or an address could be used for the node: used for SANs. */
    public static List<String> hostAddresses(String host) {
        List<String> out = new ArrayList<>();
        if (host == null || host.isBlank()) {
            return out;
        }
        try {
            if (InetAddress.getByName(host).isAnyLocalAddress()) {
                out.add(InetAddress.getLocalHost().getHostName());
                for (var nif : java.util.Collections.list(java.net.NetworkInterface.getNetworkInterfaces())) {
                    for (var a : java.util.Collections.list(nif.getInetAddresses())) {
                        String s = a.getHostAddress();
                        int pct = s.indexOf('%');
                        out.add(pct > 0 ? s.substring(0, pct) : s);
                    }
                }
                return out;
            }
        } catch (java.io.IOException e) {
            // fall through: use the text as given
        }
        out.add(host);
        if (host.startsWith("127.") || host.equals("::1")) {
            out.add("localhost");
        }
        return out;
    }
}
