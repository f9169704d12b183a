package io.ballast.cluster;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.ballast.common.BallastException;
import io.ballast.security.CertificateAuthority;
import io.ballast.security.Fingerprint;
import io.ballast.security.Pem;
import java.time.Duration;
import java.time.Instant;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The CA rotation in the metadata: one at a time, phases only forward, stale acknowledgements ignored, kept in snapshots. */
class CaRotationStateTest {
    static final String AT = "2026-12-07T21:00:00Z";

    @Test
    void phasesMoveForwardOnlyAndSurviveASnapshot() throws Exception {
        CertificateAuthority oldCa = CertificateAuthority.create("old", Instant.now(), Duration.ofDays(1));
        CertificateAuthority newCa = CertificateAuthority.create("new", Instant.now(), Duration.ofDays(1));
        String newSha = Fingerprint.sha256(newCa.certificate());
        ClusterState s = new ClusterState();
        s.apply(new Command.RegisterNode(AT, "node-1", "https://127.0.0.1:1", "127.0.0.1:2", null, Map.of(), 1L << 30, 1L << 30));
        s.apply(new Command.StartCaRotation(AT, Pem.encode(oldCa.certificate()), Pem.encode(newCa.certificate()), "node-1",
                "alice (admin)"));
        CaRotation r = s.caRotation().orElseThrow();
        assertThat(r.phase()).isEqualTo(CaRotation.TRUST);
        assertThat(r.newCaSha256()).isEqualTo(newSha);
        assertThat(CaRotator.pending(s, r)).containsExactly("node-1");

        assertThatThrownBy(() -> s.apply(new Command.StartCaRotation(AT, Pem.encode(oldCa.certificate()),
                Pem.encode(newCa.certificate()), "node-1", null))).isInstanceOf(BallastException.class)
                .hasMessageContaining("already running");
        assertThatThrownBy(() -> s.apply(new Command.AdvanceCaRotation(AT, CaRotation.REISSUE, newSha)))
                .hasMessageContaining("not in phase reissue");

        s.apply(new Command.AckCaRotation(AT, "node-1", CaRotation.REISSUE, newSha)); // stale/early: ignored
        assertThat(s.caRotation().orElseThrow().acked("node-1")).isFalse();
        s.apply(new Command.AckCaRotation(AT, "node-1", CaRotation.TRUST, newSha));
        assertThat(CaRotator.pending(s, s.caRotation().orElseThrow())).isEmpty();
        s.apply(new Command.AdvanceCaRotation(AT, CaRotation.TRUST, newSha));
        assertThat(s.caRotation().orElseThrow().phase()).isEqualTo(CaRotation.REISSUE);
        assertThat(CaRotator.pending(s, s.caRotation().orElseThrow())).containsExactly("node-1"); // acks are per phase

        ClusterState copy = new ClusterState();
        copy.load(s.toBytes());
        assertThat(copy.caRotation()).isEqualTo(s.caRotation());

        s.apply(new Command.AckCaRotation(AT, "node-1", CaRotation.REISSUE, newSha));
        s.apply(new Command.AdvanceCaRotation(AT, CaRotation.REISSUE, newSha));
        assertThat(s.caRotation().orElseThrow().phase()).isEqualTo(CaRotation.DONE);
        assertThat(s.caRotation().orElseThrow().finishedAt()).isEqualTo(AT);
        assertThat(s.events(0, 1000).stream().map(ClusterEvent::type)).contains("ca-rotation-started", "ca-rotation-finished");
        // done: another rotation may start
        CertificateAuthority third = CertificateAuthority.create("third", Instant.now(), Duration.ofDays(1));
        s.apply(new Command.StartCaRotation(AT, Pem.encode(newCa.certificate()), Pem.encode(third.certificate()), "node-1", null));
        assertThat(s.caRotation().orElseThrow().phase()).isEqualTo(CaRotation.TRUST);
    }

    @Test
    void theGateRefusesWhatIsNoCaOrNoPhase() {
        CertificateAuthority ca = CertificateAuthority.create("ca", Instant.now(), Duration.ofDays(1));
        var kp = CertificateAuthority.newKeyPair();
        String nodeCert = Pem.encode(ca.sign(CertificateAuthority.csr("node-1", kp), "node-1", java.util.List.of(), Instant.now(),
                Duration.ofDays(1)));
        String caPem = Pem.encode(ca.certificate());
        assertThatThrownBy(() -> CommandGate.validate(new Command.StartCaRotation(AT, caPem, nodeCert, "node-1", null)))
                .hasMessageContaining("newCaPem is not a CA certificate");
        assertThatThrownBy(() -> CommandGate.validate(new Command.StartCaRotation(AT, "garbage", caPem, "node-1", null)))
                .hasMessageContaining("oldCaPem is not a PEM certificate");
        assertThatThrownBy(() -> CommandGate.validate(new Command.AckCaRotation(AT, "node-1", CaRotation.DONE, "ab")))
                .hasMessageContaining("'phase' must be trust or reissue");
        assertThatThrownBy(() -> CommandGate.validate(new Command.AdvanceCaRotation(AT, CaRotation.DONE, "ab")))
                .hasMessageContaining("'fromPhase' must be trust or reissue");
    }
}
