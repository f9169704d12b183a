package io.ballast.frontend.nbd;

import io.ballast.common.TlsEngines;
import java.io.IOException;
import java.io.Reader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.PosixFilePermission;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.SecureRandom;
import java.security.Signature;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.function.Supplier;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;
import javax.net.ssl.X509ExtendedKeyManager;
import javax.net.ssl.X509ExtendedTrustManager;
import org.bouncycastle.asn1.pkcs.PrivateKeyInfo;
import org.bouncycastle.cert.X509CertificateHolder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.openssl.PEMKeyPair;
import org.bouncycastle.openssl.PEMParser;
import org.bouncycastle.openssl.jcajce.JcaPEMKeyConverter;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The server side of NBD TLS from PEM files in one directory, in the layout libnbd, qemu and nbdkit
 * use: {@value #CA_CERT} (the CA that signs client certificates; the server trusts nothing else),
 * {@value #SERVER_CERT} (the server's certificate, optionally followed by intermediates) and
 * {@value #SERVER_KEY} (its unencrypted private key, PKCS#8 or PKCS#1/SEC1).
 *
 * <p>Each {@link #get} (one per STARTTLS) checks the files' modification times and rebuilds the
 * engines when they changed, so replacing the files rotates certificates without a restart. A
 * reload that fails (say the certificate is written but not yet its key) keeps the last good
 * engines and logs why. The engines are the node's choice ({@link TlsEngines#preferred()}).
 */
public final class NbdTlsDirectory implements Supplier<TlsEngines> {
    private static final Logger log = LoggerFactory.getLogger(NbdTlsDirectory.class);

    public static final String CA_CERT = "ca-cert.pem";
    public static final String SERVER_CERT = "server-cert.pem";
    public static final String SERVER_KEY = "server-key.pem";

    /** One load of the files; its engines are made at the first STARTTLS (so the node's log, set up by then, says which). */
    private static final class Loaded {
        final List<FileTime> stamps;
        final X509ExtendedKeyManager keys;
        final X509ExtendedTrustManager trust;
        final SSLContext context;
        private volatile TlsEngines engines;

        Loaded(List<FileTime> stamps, X509ExtendedKeyManager keys, X509ExtendedTrustManager trust, SSLContext context) {
            this.stamps = stamps;
            this.keys = keys;
            this.trust = trust;
            this.context = context;
        }

        List<FileTime> stamps() {
            return stamps;
        }

        synchronized TlsEngines engines() {
            if (engines == null) {
                engines = TlsEngines.of(TlsEngines.preferred(), keys, trust, context, "nbd");
            }
            return engines;
        }
    }

    private final Path dir;
    private volatile Loaded loaded;

    private NbdTlsDirectory(Path dir, Loaded loaded) {
        this.dir = dir;
        this.loaded = loaded;
    }

    /** Loads the directory now, so a node with bad TLS files fails at start with the reason. */
    public static NbdTlsDirectory open(Path dir) throws IOException, GeneralSecurityException {
        return new NbdTlsDirectory(dir, load(dir));
    }

    public Path dir() {
        return dir;
    }

    @Override
    public TlsEngines get() {
        Loaded current = loaded;
        try {
            if (!stamps(dir).equals(current.stamps())) {
                synchronized (this) {
                    current = loaded;
                    if (!stamps(dir).equals(current.stamps())) {
                        current = load(dir);
                        loaded = current;
                        log.atInfo().addKeyValue("dir", dir).log("nbd TLS certificates reloaded");
                    }
                }
            }
        } catch (IOException | GeneralSecurityException | RuntimeException e) {
            log.atWarn().addKeyValue("dir", dir).addKeyValue("error", e.getMessage())
                    .log("nbd TLS files changed but do not load; still using the previous ones");
        }
        return current.engines();
    }

    private static List<FileTime> stamps(Path dir) throws IOException {
        return List.of(Files.getLastModifiedTime(dir.resolve(CA_CERT)),
                Files.getLastModifiedTime(dir.resolve(SERVER_CERT)),
                Files.getLastModifiedTime(dir.resolve(SERVER_KEY)));
    }

    private static Loaded load(Path dir) throws IOException, GeneralSecurityException {
        List<FileTime> stamps = stamps(dir);
        List<X509Certificate> cas = readCertificates(dir.resolve(CA_CERT));
        List<X509Certificate> chain = readCertificates(dir.resolve(SERVER_CERT));
        Path keyFile = dir.resolve(SERVER_KEY);
        PrivateKey key = readPrivateKey(keyFile);
        checkKeyMatches(key, chain.getFirst(), dir.resolve(SERVER_CERT), keyFile);
        warnIfReadableByOthers(keyFile);

        KeyStore keys = KeyStore.getInstance("PKCS12");
        keys.load(null, null);
        char[] none = new char[0];
        keys.setKeyEntry("server", key, none, chain.toArray(new X509Certificate[0]));
        KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
        kmf.init(keys, none);

        KeyStore trusted = KeyStore.getInstance("PKCS12");
        trusted.load(null, null);
        for (int i = 0; i < cas.size(); i++) {
            trusted.setCertificateEntry("ca-" + i, cas.get(i));
        }
        TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(trusted);

        SSLContext context = SSLContext.getInstance("TLS");
        context.init(kmf.getKeyManagers(), tmf.getTrustManagers(), new SecureRandom());
        return new Loaded(stamps, only(kmf.getKeyManagers(), X509ExtendedKeyManager.class),
                only(tmf.getTrustManagers(), X509ExtendedTrustManager.class), context);
    }

    private static <T> T only(Object[] managers, Class<T> type) throws GeneralSecurityException {
        for (Object m : managers) {
            if (type.isInstance(m)) {
                return type.cast(m);
            }
        }
        throw new GeneralSecurityException("the JDK's default factory made no " + type.getSimpleName());
    }

    static List<X509Certificate> readCertificates(Path file) throws IOException, GeneralSecurityException {
        List<X509Certificate> certs = new ArrayList<>();
        try (Reader r = Files.newBufferedReader(file); PEMParser pem = new PEMParser(r)) {
            JcaX509CertificateConverter converter = new JcaX509CertificateConverter();
            for (Object o; (o = pem.readObject()) != null; ) {
                if (o instanceof X509CertificateHolder h) {
                    certs.add(converter.getCertificate(h));
                }
            }
        }
        if (certs.isEmpty()) {
            throw new GeneralSecurityException(file + " holds no PEM certificate");
        }
        return certs;
    }

    static PrivateKey readPrivateKey(Path file) throws IOException, GeneralSecurityException {
        try (Reader r = Files.newBufferedReader(file); PEMParser pem = new PEMParser(r)) {
            JcaPEMKeyConverter converter = new JcaPEMKeyConverter();
            // EC keys may be preceded by their parameters: skip what is not a key.
            for (Object o; (o = pem.readObject()) != null; ) {
                switch (o) {
                    case PEMKeyPair pair -> {
                        return converter.getPrivateKey(pair.getPrivateKeyInfo());
                    }
                    case PrivateKeyInfo info -> {
                        return converter.getPrivateKey(info);
                    }
                    case org.bouncycastle.pkcs.PKCS8EncryptedPrivateKeyInfo encrypted ->
                            throw new GeneralSecurityException(file + " holds an encrypted key; the node needs it unencrypted (readable by root only)");
                    default -> { }
                }
            }
        }
        throw new GeneralSecurityException(file + " holds no PEM private key");
    }

    /** A key that does not belong to the certificate would only fail at each client's handshake. */
    private static void checkKeyMatches(PrivateKey key, X509Certificate cert, Path certFile, Path keyFile)
            throws GeneralSecurityException {
        String algorithm = switch (key.getAlgorithm()) {
            case "RSA" -> "SHA256withRSA";
            case "EC" -> "SHA256withECDSA";
            case "Ed25519", "Ed448", "EdDSA" -> key.getAlgorithm();
            default -> null;
        };
        if (algorithm == null) {
            return; // unusual key type: the handshake will tell
        }
        byte[] probe = "ballast nbd tls key check".getBytes(java.nio.charset.StandardCharsets.US_ASCII);
        Signature signer = Signature.getInstance(algorithm);
        signer.initSign(key);
        signer.update(probe);
        byte[] signature = signer.sign();
        Signature verifier = Signature.getInstance(algorithm);
        verifier.initVerify(cert.getPublicKey());
        verifier.update(probe);
        boolean matches;
        try {
            matches = verifier.verify(signature);
        } catch (GeneralSecurityException e) {
            matches = false;
        }
        if (!matches) {
            throw new GeneralSecurityException(keyFile + " is not the private key of the certificate in " + certFile);
        }
    }

    private static void warnIfReadableByOthers(Path keyFile) {
        try {
            Set<PosixFilePermission> perms = Files.getPosixFilePermissions(keyFile);
            if (perms.contains(PosixFilePermission.GROUP_READ) || perms.contains(PosixFilePermission.OTHERS_READ)) {
                log.atWarn().addKeyValue("file", keyFile)
                        .log("nbd TLS private key is readable by group or others; chmod 600 it");
            }
        } catch (IOException | UnsupportedOperationException e) {
            // Not a POSIX file system: nothing to check.
        }
    }
}
