package io.ballast.cluster;

import io.ballast.common.BallastException;
import io.ballast.security.NodeTls;
import io.ballast.security.Pem;
import java.io.IOException;
import java.security.cert.X509Certificate;
import java.time.InstantSource;
import java.util.ArrayList;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Carries out a cluster CA rotation on this node (docs/security.md, "Rotating the cluster CA"), from
 * the {@link CaRotation} in the Raft state, so it resumes after a restart or a leader change:
 * <ol>
 *   <li>trust: trust the old and the new CA on every port, then acknowledge;
 *   <li>reissue: renew this node's certificate (the node holding the new key signs with it), then
 *       acknowledge;
 *   <li>done: trust the new CA alone, rewrite the join token's CA pin.
 * </ol>
 * The leader advances a phase once every member acknowledged it. One pass every {@code periodMs}.
 */
public final class CaRotator implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(CaRotator.class);

    private final ClusterMember member;
    private final NodeTls tls;
    private final InstantSource clock;
    private final long periodMs;
    private volatile boolean closed;
    private volatile Thread loop;
    private long nextRenewMs;
    private String lastProblem;

    public CaRotator(ClusterMember member, NodeTls tls, InstantSource clock, long periodMs) {
        this.member = member;
        this.tls = tls;
        this.clock = clock;
        this.periodMs = periodMs;
    }

    public CaRotator start() {
        loop = Thread.ofVirtual().name("ballast-ca-rotation").start(() -> {
            while (!closed) {
                try {
                    Thread.sleep(periodMs);
                } catch (InterruptedException e) {
                    return;
                }
                try {
                    pass();
                    lastProblem = null;
                } catch (IOException | RuntimeException e) {
                    String problem = e.getMessage();
                    if (!java.util.Objects.equals(problem, lastProblem)) { // once per distinct problem, not every pass
                        log.atWarn().log("CA rotation step failed (retrying): {}", problem);
                    }
                    lastProblem = problem;
                }
            }
        });
        return this;
    }

    /** One reconciliation of this node with the rotation in the metadata. */
    void pass() throws IOException {
        CaRotation r = member.state().caRotation().orElse(null);
        if (r == null || member.raft() == null) {
            return;
        }
        X509Certificate oldCa = Pem.certificate(r.oldCaPem());
        X509Certificate newCa = Pem.certificate(r.newCaPem());
        String me = member.nodeId();
        switch (r.phase()) {
            case CaRotation.TRUST -> {
                trustBoth(oldCa, newCa);
                if (!r.acked(me)) {
                    ack(r);
                }
            }
            case CaRotation.REISSUE -> {
                trustBoth(oldCa, newCa);
                if (tls.nextCa().filter(newCa::equals).isPresent()) {
                    tls.signWithNext();
                }
                if (!tls.certificateFrom(newCa)) {
                    long nowMs = clock.millis();
                    if (nowMs >= nextRenewMs) {
                        nextRenewMs = nowMs + 1000; // the signer may not have reached this phase yet: try again soon
                        tls.renewNow();
                    }
                } else if (!r.acked(me)) {
                    ack(r);
                }
            }
            default -> {
                if (!tls.trustedCas().equals(List.of(newCa)) || tls.nextCa().isPresent()
                        || tls.signingCa().filter(c -> !c.equals(newCa)).isPresent()) {
                    tls.finishRotation(newCa);
                    member.rewriteTokenFile();
                }
            }
        }
        if (r.inProgress() && member.raft().isLeader()) {
            List<String> pending = pending(member.state(), r);
            if (pending.isEmpty()) {
                try {
                    member.raft().submit(new Command.AdvanceCaRotation(clock.instant().toString(), r.phase(), r.newCaSha256()));
                    log.atInfo().addKeyValue("from", r.phase()).addKeyValue("to", CaRotation.next(r.phase()))
                            .log("cluster CA rotation advanced");
                } catch (BallastException e) {
                    log.atDebug().log("CA rotation not advanced: {}", e.getMessage()); // another leader did it
                }
            }
        }
    }

    /** Members that have not acknowledged the rotation's current phase. */
    public static List<String> pending(ClusterState s, CaRotation r) {
        List<String> out = new ArrayList<>();
        for (NodeRecord n : s.nodes()) {
            if (!r.acked(n.id())) {
                out.add(n.id());
            }
        }
        return out;
    }

    private void trustBoth(X509Certificate oldCa, X509Certificate newCa) throws IOException {
        List<X509Certificate> cas = tls.trustedCas();
        if (cas.contains(oldCa) && cas.contains(newCa)) {
            return;
        }
        List<X509Certificate> both = new ArrayList<>(cas);
        for (X509Certificate c : List.of(oldCa, newCa)) {
            if (!both.contains(c)) {
                both.add(c);
            }
        }
        tls.trust(both);
    }

    private void ack(CaRotation r) {
        member.raft().submit(new Command.AckCaRotation(clock.instant().toString(), member.nodeId(), r.phase(), r.newCaSha256()));
        log.atInfo().addKeyValue("phase", r.phase()).addKeyValue("caSha256", r.newCaSha256()).log("CA rotation phase reached here");
    }

    @Override
    public void close() {
        closed = true;
        Thread t = loop;
        if (t != null) {
            t.interrupt();
        }
    }
}
