package io.ballast.cli;

import io.ballast.common.BallastException;
import io.ballast.security.ClusterTrustManager;
import io.ballast.security.TlsDir;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.cert.CertificateException;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.util.Map;
import java.util.Optional;
import javax.net.ssl.SSLContext;

/**
 * Which CA the CLI trusts for node APIs, in one place: {@code --ca-file F}, else
 * {@code $BALLAST_CA_FILE}, else the CA of the local cluster {@code ballast up} made under
 * $BALLAST_HOME (node-1/tls/ca.crt). The JDK's default trust store is never used for a node: a
 * cluster's certificates come from its own CA. (The auth branch will fold this into contexts.)
 */
final class CliTrust {
    private static volatile Path caFileFlag;
    private static volatile Map<String, String> env = Map.of();
    private static volatile Path home;

    private record Cached(String key, SSLContext context) {}

    private static volatile Cached cached;

    private CliTrust() {}

    /** Called once per command line, before any NodeClient is made. */
    static void configure(Path flag, Map<String, String> environment, Path ballastHome) {
        caFileFlag = flag;
        contextCaFile = null;
        alsoTrustedPem = null;
        env = environment;
        home = ballastHome;
    }

    /** The --ca-file value, removed from the arguments (it may come anywhere on the line). */
    static Path caFileArg(String[] args) {
        for (int i = 0; i < args.length; i++) {
            if (args[i].equals("--ca-file") && i + 1 < args.length) {
                return Path.of(args[i + 1]);
            }
            if (args[i].startsWith("--ca-file=")) {
                return Path.of(args[i].substring("--ca-file=".length()));
            }
        }
        return null;
    }

    private static volatile Path contextCaFile;

    /** The current context's CA file (ApiTarget): after --ca-file and $BALLAST_CA_FILE, before the local cluster's. */
    static void contextCaFile(Path f) {
        contextCaFile = f;
    }

    /** Whether the CA file in use is the current context's (not --ca-file, not $BALLAST_CA_FILE, not the local cluster's). */
    static boolean caFileFromContext() {
        String e = env.get("BALLAST_CA_FILE");
        return caFileFlag == null && (e == null || e.isBlank()) && contextCaFile != null;
    }

    static Optional<Path> caFile() {
        if (caFileFlag != null) {
            return Optional.of(caFileFlag);
        }
        String e = env.get("BALLAST_CA_FILE");
        if (e != null && !e.isBlank()) {
            return Optional.of(Path.of(e));
        }
        if (contextCaFile != null) {
            return Optional.of(contextCaFile);
        }
        if (home != null) {
            Path local = TlsDir.of(new LocalCluster(home).nodeDir(1)).caCert();
            if (Files.isReadable(local)) {
                return Optional.of(local);
            }
        }
        return Optional.empty();
    }

    /**
     * The CA certificates (PEM; two during a CA rotation) through the JDK's own X.509 parser: Bouncy
     * Castle (security.Pem) would add its signed jars' verification and ~200 classes to every CLI call's
     * start (docs/perf/startup.md).
     */
    static java.util.List<X509Certificate> readCas(InputStream in) throws CertificateException {
        java.util.List<X509Certificate> out = new java.util.ArrayList<>();
        for (var c : CertificateFactory.getInstance("X.509").generateCertificates(in)) {
            if (c instanceof X509Certificate x) {
                out.add(x);
            }
        }
        if (out.isEmpty()) {
            throw new CertificateException("no X.509 certificate in it");
        }
        return out;
    }

    private static java.util.List<X509Certificate> readCas(Path file) throws IOException, CertificateException {
        try (InputStream in = Files.newInputStream(file)) {
            return readCas(in);
        }
    }

    /** CAs this command line trusts besides the file's: a CA rotation it started (PEM), so it can follow it. */
    private static volatile String alsoTrustedPem;

    static void alsoTrust(String pem) {
        alsoTrustedPem = pem;
    }

    /** A context trusting the cluster CA, or empty (no CA known: plain http URLs only). */
    static Optional<SSLContext> sslContext() {
        Optional<Path> f = caFile();
        if (f.isEmpty()) {
            return Optional.empty();
        }
        try {
            // one context per CA file and version: commands poll nodes (up waits for /healthz) with new clients
            String also = alsoTrustedPem;
            String key = f.get().toAbsolutePath() + "@" + Files.getLastModifiedTime(f.get()).toMillis() + "+" + (also == null ? 0 : also.hashCode());
            Cached c = cached;
            if (c != null && c.key().equals(key)) {
                return Optional.of(c.context());
            }
            SSLContext ctx = SSLContext.getInstance("TLS");
            java.util.List<X509Certificate> cas = new java.util.ArrayList<>(readCas(f.get()));
            if (also != null) {
                for (X509Certificate extra : readCas(new java.io.ByteArrayInputStream(also.getBytes(java.nio.charset.StandardCharsets.US_ASCII)))) {
                    if (!cas.contains(extra)) {
                        cas.add(extra);
                    }
                }
            }
            ctx.init(null, new javax.net.ssl.TrustManager[] {new ClusterTrustManager(cas)}, null);
            cached = new Cached(key, ctx);
            return Optional.of(ctx);
        } catch (IOException | CertificateException e) {
            throw BallastException.invalid("cannot read the cluster CA certificate " + f.get() + ": " + e.getMessage()
                    + " (--ca-file or $BALLAST_CA_FILE)");
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(e);
        }
    }
}
