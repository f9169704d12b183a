package io.ballast.security;

import io.ballast.common.DurableFiles;
import io.ballast.common.OwnerOnly;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.PrivateKey;
import java.security.cert.X509Certificate;

/**
 * DATA/tls: {@code ca.crt} (the cluster CA; during a CA rotation the old and the new, both trusted),
 * {@code ca.key} (only on nodes that sign: the first node, or where the operator put it), {@code
 * ca-next.crt}/{@code ca-next.key} (the new CA, on the node that started a rotation, until it ends), {@code node.key} (made here, never sent) and {@code node.crt}. PEM,
 * owner-only (0600 in a 0700 directory).
 */
public record TlsDir(Path dir) {
    public static TlsDir of(Path dataDir) {
        return new TlsDir(dataDir.resolve("tls"));
    }

    public Path caCert() {
        return dir.resolve("ca.crt");
    }

    public Path caKey() {
        return dir.resolve("ca.key");
    }

    /** The new CA of a rotation in progress (docs/security.md, "Rotating the cluster CA"). */
    public Path caNextCert() {
        return dir.resolve("ca-next.crt");
    }

    public Path caNextKey() {
        return dir.resolve("ca-next.key");
    }

    public Path nodeKey() {
        return dir.resolve("node.key");
    }

    public Path nodeCert() {
        return dir.resolve("node.crt");
    }

    public boolean hasNodeCredentials() {
        return Files.exists(caCert()) && Files.exists(nodeKey()) && Files.exists(nodeCert());
    }

    public boolean hasCaKey() {
        return Files.exists(caKey());
    }

    public X509Certificate readCaCert() throws IOException {
        return readCert(caCert());
    }

    /** Every CA {@code ca.crt} holds: one, or two during a CA rotation. */
    public java.util.List<X509Certificate> readCaCerts() throws IOException {
        try {
            java.util.List<X509Certificate> all = Pem.certificates(Files.readString(caCert(), StandardCharsets.US_ASCII));
            if (all.isEmpty()) {
                throw new IOException(caCert() + " holds no certificate");
            }
            return all;
        } catch (IllegalArgumentException e) {
            throw new IOException(caCert() + ": " + e.getMessage(), e);
        }
    }

    public X509Certificate readNodeCert() throws IOException {
        return readCert(nodeCert());
    }

    public PrivateKey readCaKey() throws IOException {
        return readKey(caKey());
    }

    public PrivateKey readNodeKey() throws IOException {
        return readKey(nodeKey());
    }

    public void write(Path file, String pem) throws IOException {
        OwnerOnly.createDirectories(dir);
        DurableFiles.writeAtomically(file, pem.getBytes(StandardCharsets.US_ASCII));
        OwnerOnly.restrictFile(file);
    }

    public static X509Certificate readCert(Path file) throws IOException {
        try {
            return Pem.certificate(Files.readString(file, StandardCharsets.US_ASCII));
        } catch (IllegalArgumentException e) {
            throw new IOException(file + ": " + e.getMessage(), e);
        }
    }

    public static PrivateKey readKey(Path file) throws IOException {
        try {
            return Pem.privateKey(Files.readString(file, StandardCharsets.US_ASCII));
        } catch (IllegalArgumentException e) {
            throw new IOException(file + ": " + e.getMessage(), e);
        }
    }
}
