package io.ballast.cluster;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.ballast.common.BallastException;
import io.ballast.common.ErrorCode;
import io.ballast.common.Json;
import io.ballast.security.CertificateAuthority;
import io.ballast.security.Fingerprint;
import io.ballast.security.NodeTls;
import io.ballast.security.Pem;
import io.ballast.security.TlsSettings;
import java.io.IOException;
import java.security.PrivateKey;
import java.security.cert.X509Certificate;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The API side of a cluster CA rotation: {@code POST /v1/cluster/ca/rotate} (admin) starts one on a
 * node holding the CA key (passed on to one otherwise), {@code GET /v1/cluster/ca/rotation} shows it.
 * The new CA's key is written to that node's DATA/tls and never put in the metadata, a log, an event or
 * an answer. {@link CaRotator} carries the rotation out on every node.
 */
public final class CaRotationRequests {
    public static final String ROTATE_PATH = "/v1/cluster/ca/rotate";
    private static final ObjectMapper JSON = Json.newMapper();

    private CaRotationRequests() {}

    /**
     * Whether this node may sign now: outside a rotation's re-issue and done phases with any CA key it
     * holds; inside them only with the new CA's (a node holding only the old key passes requests on).
     */
    static boolean maySign(ClusterState s, NodeTls t) {
        CaRotation r = s.caRotation().orElse(null);
        if (r == null || CaRotation.TRUST.equals(r.phase())) {
            return true;
        }
        X509Certificate newCa = Pem.certificate(r.newCaPem());
        return t.signingCa().filter(newCa::equals).isPresent();
    }

    /**
     * Starts a rotation: to the operator's CA ({@code caCertPem} and {@code caKeyPem}, PEM) or to a new
     * one made here. {@code by}: the caller, for the event.
     */
    public static Map<String, Object> start(ClusterMember member, String caCertPem, String caKeyPem, boolean forwarded,
            String callerBearer, String by) {
        NodeTls t = member.tls();
        if (t == null) {
            throw BallastException.conflict("this cluster runs without TLS (--insecure): there is no cluster CA to rotate");
        }
        if ((caCertPem == null) != (caKeyPem == null)) {
            throw BallastException.invalid("bring both the new CA's certificate and its key (--ca-cert and --ca-key), or neither");
        }
        member.state().caRotation().filter(CaRotation::inProgress).ifPresent(r -> {
            throw BallastException.conflict("a cluster CA rotation is already running (phase " + r.phaseNumber() + ", " + r.phase()
                    + ", to CA sha256 " + r.newCaSha256() + "); `ballast cluster ca status` shows it");
        });
        X509Certificate current = t.signingCa().orElse(null);
        if (current == null || !current.equals(t.ca())) {
            if (forwarded) {
                throw new BallastException(ErrorCode.UNAVAILABLE, "node " + member.nodeId() + " does not hold the cluster CA key");
            }
            return forward(member, t, caCertPem, caKeyPem, callerBearer);
        }
        CertificateAuthority next = caCertPem == null
                ? CertificateAuthority.create("Ballast cluster CA " + member.nodeId() + " " + Instant.now().getEpochSecond(),
                        Instant.now(), TlsSettings.CA_LIFETIME)
                : brought(caCertPem, caKeyPem);
        if (next.certificate().equals(current)) {
            throw BallastException.invalid("the new CA is the cluster's current CA (sha256 " + Fingerprint.sha256(current) + ")");
        }
        try {
            t.beginRotation(next);
        } catch (IOException e) {
            throw new BallastException(ErrorCode.INTERNAL, "cannot keep the new CA in DATA/tls: " + e.getMessage(), e);
        }
        try {
            member.raft().submit(new Command.StartCaRotation(Instant.now().toString(), Pem.encode(current),
                    Pem.encode(next.certificate()), member.nodeId(), by));
        } catch (RuntimeException e) {
            try {
                t.abortRotation(next.certificate()); // nothing was committed: forget the new CA here too
            } catch (IOException io) {
                e.addSuppressed(io);
            }
            throw e;
        }
        return status(member);
    }

    /** The operator's CA: a CA certificate, valid now, whose key is the one given. Messages never quote the key. */
    private static CertificateAuthority brought(String certPem, String keyPem) {
        X509Certificate cert;
        PrivateKey key;
        try {
            cert = Pem.certificate(certPem);
        } catch (IllegalArgumentException e) {
            throw BallastException.invalid("the new CA certificate is not a PEM certificate");
        }
        try {
            key = Pem.privateKey(keyPem);
        } catch (IllegalArgumentException e) {
            throw BallastException.invalid("the new CA key is not a PEM private key (PKCS#8 or traditional EC/RSA, unencrypted)");
        }
        if (cert.getBasicConstraints() < 0) {
            throw BallastException.invalid("the new CA certificate is not a CA certificate (no basicConstraints CA:true)");
        }
        try {
            cert.checkValidity();
        } catch (java.security.cert.CertificateException e) {
            throw BallastException.invalid("the new CA certificate is not valid now (" + cert.getNotBefore().toInstant() + " to "
                    + cert.getNotAfter().toInstant() + ")");
        }
        if (!NodeTls.keyMatches(cert, key)) {
            throw BallastException.invalid("the new CA key is not the key of the new CA certificate");
        }
        return new CertificateAuthority(cert, key);
    }

    private static Map<String, Object> forward(ClusterMember member, NodeTls t, String caCertPem, String caKeyPem, String bearer) {
        Map<String, Object> body = new LinkedHashMap<>();
        body.put("caCert", caCertPem);
        body.put("caKey", caKeyPem);
        body.put("forwarded", true);
        String json;
        try {
            json = JSON.writeValueAsString(body);
        } catch (IOException e) {
            throw new BallastException(ErrorCode.INTERNAL, "cannot encode a rotation request", e);
        }
        PeerCalls peers = PeerCalls.onBehalfOf(t, bearer);
        BallastException last = null;
        for (NodeRecord n : member.state().nodes()) {
            if (n.id().equals(member.nodeId()) || n.apiUrl() == null || NodeRecord.DOWN.equals(n.state())) {
                continue;
            }
            try {
                JsonNode r = peers.call(n, "POST", ROTATE_PATH, json);
                @SuppressWarnings("unchecked")
                Map<String, Object> out = JSON.convertValue(r, Map.class);
                return out;
            } catch (BallastException e) {
                if (e.code() != ErrorCode.UNAVAILABLE) {
                    throw e; // its answer (a conflict, a bad CA) is the caller's
                }
                last = e;
            }
        }
        throw new BallastException(ErrorCode.UNAVAILABLE, "no member holding the cluster CA key answers"
                + (last == null ? "" : " (" + last.getMessage() + ")")
                + "; the node that signs keeps it in DATA/tls/ca.key: start it, or rotate through it");
    }

    /** {@code GET /v1/cluster/ca/rotation}: the CA in force, what this node trusts, and the rotation's progress. */
    public static Map<String, Object> status(ClusterMember member) {
        NodeTls t = member.tls();
        if (t == null) {
            throw BallastException.conflict("this cluster runs without TLS (--insecure): there is no cluster CA");
        }
        ClusterState s = member.state();
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("caSha256", t.caFingerprint());
        out.put("trustedCaSha256", t.trustedCas().stream().map(Fingerprint::sha256).toList());
        out.put("trustPem", Pem.encode(t.trustedCas().toArray()));
        CaRotation r = s.caRotation().orElse(null);
        if (r == null) {
            out.put("rotation", null);
            return out;
        }
        Map<String, Object> rot = new LinkedHashMap<>();
        rot.put("phase", r.phase());
        rot.put("phaseNumber", r.phaseNumber());
        rot.put("oldCaSha256", r.oldCaSha256());
        rot.put("newCaSha256", r.newCaSha256());
        rot.put("signerNodeId", r.signerNodeId());
        rot.put("startedAt", r.startedAt());
        rot.put("finishedAt", r.finishedAt());
        rot.put("by", r.by());
        List<Map<String, Object>> nodes = new ArrayList<>();
        for (NodeRecord n : s.nodes()) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("nodeId", n.id());
            m.put("acknowledged", !r.inProgress() || r.acked(n.id()));
            m.put("state", n.state());
            nodes.add(m);
        }
        rot.put("nodes", nodes);
        rot.put("pendingNodeIds", r.inProgress() ? CaRotator.pending(s, r) : List.of());
        out.put("rotation", rot);
        return out;
    }
}
