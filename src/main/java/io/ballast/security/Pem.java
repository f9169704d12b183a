package io.ballast.security;

import java.io.IOException;
import java.io.StringReader;
import java.io.StringWriter;
import java.security.KeyPair;
import java.security.PrivateKey;
import java.security.cert.CertificateException;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.List;
import org.bouncycastle.cert.X509CertificateHolder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.openssl.PEMKeyPair;
import org.bouncycastle.openssl.PEMParser;
import org.bouncycastle.openssl.jcajce.JcaPEMKeyConverter;
import org.bouncycastle.openssl.jcajce.JcaPEMWriter;
import org.bouncycastle.asn1.pkcs.PrivateKeyInfo;
import org.bouncycastle.pkcs.PKCS10CertificationRequest;

/** PEM text of certificates, private keys and certificate requests (the codec; no policy here). */
public final class Pem {
    private Pem() {}

    /**
     * An EC key pair's private key as PKCS#8 whose inner ECPrivateKey carries the public key too: the
     * JDK's own encoding leaves it out, and GnuTLS (libnbd, qemu) then refuses the key ("ASN1 parser:
     * Element was not found"). For key files that other TLS stacks read.
     */
    public static String encodeEcKeyWithPublic(java.security.KeyPair kp) {
        java.security.interfaces.ECPrivateKey key = (java.security.interfaces.ECPrivateKey) kp.getPrivate();
        org.bouncycastle.asn1.pkcs.PrivateKeyInfo jdk = org.bouncycastle.asn1.pkcs.PrivateKeyInfo.getInstance(key.getEncoded());
        org.bouncycastle.asn1.x509.SubjectPublicKeyInfo pub =
                org.bouncycastle.asn1.x509.SubjectPublicKeyInfo.getInstance(kp.getPublic().getEncoded());
        try {
            org.bouncycastle.asn1.pkcs.PrivateKeyInfo full = new org.bouncycastle.asn1.pkcs.PrivateKeyInfo(jdk.getPrivateKeyAlgorithm(),
                    new org.bouncycastle.asn1.sec.ECPrivateKey(key.getParams().getOrder().bitLength(), key.getS(),
                            pub.getPublicKeyData(), null));
            return encode(new org.bouncycastle.util.io.pem.PemObject("PRIVATE KEY", full.getEncoded()));
        } catch (IOException e) {
            throw new IllegalStateException("PEM encoding failed", e);
        }
    }

    public static String encode(Object... objects) {
        StringWriter out = new StringWriter();
        try (JcaPEMWriter w = new JcaPEMWriter(out)) {
            for (Object o : objects) {
                if (o instanceof PrivateKey pk) {
                    // PKCS#8 ("PRIVATE KEY"): the JDK and openssl read it, and it needs no public key beside it
                    w.writeObject(new org.bouncycastle.openssl.jcajce.JcaPKCS8Generator(pk, null));
                } else {
                    w.writeObject(o);
                }
            }
        } catch (IOException e) {
            throw new IllegalStateException("PEM encoding failed", e);
        }
        return out.toString();
    }

    public static List<X509Certificate> certificates(String pem) {
        List<X509Certificate> certs = new ArrayList<>();
        try (PEMParser p = new PEMParser(new StringReader(pem))) {
            for (Object o = p.readObject(); o != null; o = p.readObject()) {
                if (o instanceof X509CertificateHolder h) {
                    certs.add(new JcaX509CertificateConverter().getCertificate(h));
                }
            }
        } catch (IOException | CertificateException e) {
            throw new IllegalArgumentException("not a PEM certificate: " + e.getMessage(), e);
        }
        if (certs.isEmpty()) {
            throw new IllegalArgumentException("no PEM certificate found");
        }
        return certs;
    }

    public static X509Certificate certificate(String pem) {
        return certificates(pem).getFirst();
    }

    /** An EC or RSA private key, PKCS#8 ("PRIVATE KEY") or traditional ("EC PRIVATE KEY", "RSA PRIVATE KEY"). */
    public static PrivateKey privateKey(String pem) {
        try (PEMParser p = new PEMParser(new StringReader(pem))) {
            for (Object o = p.readObject(); o != null; o = p.readObject()) {
                JcaPEMKeyConverter c = new JcaPEMKeyConverter();
                if (o instanceof PEMKeyPair kp) {
                    return c.getPrivateKey(kp.getPrivateKeyInfo()); // "EC PRIVATE KEY" may carry no public key
                }
                if (o instanceof PrivateKeyInfo info) {
                    return c.getPrivateKey(info);
                }
            }
        } catch (IOException e) {
            throw new IllegalArgumentException("not a PEM private key: " + e.getMessage(), e);
        }
        throw new IllegalArgumentException("no unencrypted PEM private key found (encrypted keys are not supported)");
    }

    public static PKCS10CertificationRequest csr(String pem) {
        try (PEMParser p = new PEMParser(new StringReader(pem))) {
            Object o = p.readObject();
            if (o instanceof PKCS10CertificationRequest r) {
                return r;
            }
        } catch (IOException e) {
            throw new IllegalArgumentException("not a PEM certificate request: " + e.getMessage(), e);
        }
        throw new IllegalArgumentException("no PEM certificate request found");
    }

    static String privateKey(KeyPair kp) {
        return encode(kp.getPrivate());
    }
}
