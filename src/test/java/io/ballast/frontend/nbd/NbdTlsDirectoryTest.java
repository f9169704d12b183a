package io.ballast.frontend.nbd;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.ballast.common.TlsEngines;
import io.ballast.testing.TestCertificates;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.security.GeneralSecurityException;
import java.time.Instant;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The PEM directory behind `node start --nbd-tls-dir`: loading, refusing a wrong key, rotation. */
class NbdTlsDirectoryTest {
    @TempDir
    Path dir;

    @Test
    void aKeyThatIsNotTheCertificatesIsRefusedAtOpen() throws Exception {
        TestCertificates.Ca ca = TestCertificates.newCa("ca");
        TestCertificates.writeServerDir(dir, ca, ca.server("node"));
        Path otherDir = dir.resolve("other");
        TestCertificates.writeServerDir(otherDir, ca, ca.server("other"));
        Files.copy(otherDir.resolve("server-key.pem"), dir.resolve("server-key.pem"),
                java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        assertThatThrownBy(() -> NbdTlsDirectory.open(dir)).isInstanceOf(GeneralSecurityException.class)
                .hasMessageContaining("server-key.pem is not the private key of the certificate in");
        Files.writeString(dir.resolve("ca-cert.pem"), "not a certificate\n");
        assertThatThrownBy(() -> NbdTlsDirectory.open(dir)).hasMessageContaining("ca-cert.pem holds no PEM certificate");
    }

    @Test
    void replacedFilesApplyToTheNextContextAndAHalfReplacedSetKeepsTheOldOne() throws Exception {
        TestCertificates.Ca ca = TestCertificates.newCa("ca");
        TestCertificates.writeServerDir(dir, ca, ca.server("node"));
        NbdTlsDirectory files = NbdTlsDirectory.open(dir);
        TlsEngines first = files.get();
        assertThat(files.get()).as("unchanged files, same context").isSameAs(first);

        // Half a rotation: a new certificate, the old key still there.
        Path next = dir.resolve("next");
        TestCertificates.writeServerDir(next, ca, ca.server("node"));
        Files.copy(next.resolve("server-cert.pem"), dir.resolve("server-cert.pem"),
                java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        bump(dir.resolve("server-cert.pem"));
        assertThat(files.get()).as("a set that does not load keeps the previous context").isSameAs(first);

        Files.copy(next.resolve("server-key.pem"), dir.resolve("server-key.pem"),
                java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        bump(dir.resolve("server-key.pem"));
        TlsEngines rotated = files.get();
        assertThat(rotated).isNotSameAs(first);
        assertThat(files.get()).isSameAs(rotated);
    }

    /** A modification time distinct from the previous one, however coarse the file system's clock. */
    private static void bump(Path file) throws Exception {
        Files.setLastModifiedTime(file, FileTime.from(Instant.now().plusSeconds(5 + (long) (Math.random() * 1000))));
    }
}
