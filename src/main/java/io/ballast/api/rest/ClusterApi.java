package io.ballast.api.rest;

import io.ballast.cluster.JoinRequest;

/** The cluster endpoints' view of the node: membership, node states, events. Results are JSON-serialisable. */
public interface ClusterApi {

    /** Leader, term, nodes, capacity and volume health. {@code linearizable} false: this node's local view. */
    Object status(boolean linearizable);

    JoinRequest.Response join(JoinRequest request);

    /**
     * Signs a node certificate: for a joining node with the cluster token, or for a member renewing its
     * own (peerNodeId: the caller's verified client certificate). Answers {certificate, ca} in PEM.
     */
    default Object issueCertificate(io.ballast.security.CertificateRequest request, String peerNodeId) {
        throw io.ballast.common.BallastException.notFound("this node issues no certificates");
    }

    /** Signs an NBD client certificate (docs/nbd.md, "TLS"); {@code callerBearer} goes along if it must be forwarded. */
    default Object issueNbdClientCertificate(String name, String csrPem, long lifetimeHours, boolean forwarded, String callerBearer) {
        throw io.ballast.common.BallastException.notFound("this node issues no certificates");
    }

    /** The cluster CA: fingerprint, validity, PEM. */
    default Object ca() {
        throw io.ballast.common.BallastException.notFound("this node runs without TLS");
    }

    Object nodes();

    Object node(String id);

    Object cordon(String id, boolean cordoned);

    Object drain(String id);

    Object remove(String id, boolean force);

    Object events(long afterSeq, int limit);

    /** The failure-detection timeouts in force (cluster-wide once set). */
    Object settings();

    /** Changes the given timeouts cluster-wide (null: unchanged); answers the settings now in force. */
    Object updateSettings(Long heartbeatMs, Long suspectAfterMs, Long downAfterMs, Long rebuildAfterMs);

    /**
     * The encrypted volumes and their data keys as the metadata keeps them: wrapped by the cluster key
     * (never a key in the clear), with the id of the key that wrapped each.
     */
    Object encryptionKeys();

    /** Commits a key rotation (every data key wrapped anew by the caller; see Command.RewrapVolumeKeys). */
    Object rotateKeys(ApiTypes.RotateKeysRequest request);
}
