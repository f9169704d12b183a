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

    /** Revokes the NBD client certificates issued to {@code name} so far. */
    default Object revokeNbdClientCertificates(String name) {
        throw io.ballast.common.BallastException.notFound("this node issues no certificates");
    }

    /** Starts a cluster CA rotation (docs/security.md); {@code by} names the caller for the event. */
    default Object rotateCa(String caCertPem, String caKeyPem, boolean forwarded, String callerBearer, String by) {
        throw io.ballast.common.BallastException.notFound("this node runs without TLS");
    }

    /** The CA in force, the CAs this node trusts and the last CA rotation's progress. */
    default Object caRotation() {
        throw io.ballast.common.BallastException.notFound("this node runs without TLS");
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

    /**
     * Events about {@code subject} (null: all) after {@code afterSeq}: the first {@code limit} when
     * {@code forward} (a page sequence), else the newest {@code limit}.
     */
    default io.ballast.cluster.ClusterState.Listed<io.ballast.cluster.ClusterEvent> events(long afterSeq, String subject,
            int limit, boolean forward) {
        throw io.ballast.common.BallastException.notFound("this node keeps no events");
    }

    /**
     * Members in id order after {@code afterId} (null: from the first) in {@code state} (null: any) carrying
     * every label of {@code labels}, at most {@code limit} (0: all); each as {@link #node} shows it.
     */
    default io.ballast.cluster.ClusterState.Listed<Object> nodes(String state, java.util.Map<String, String> labels,
            String afterId, int limit) {
        throw io.ballast.common.BallastException.notFound("this node lists no members");
    }

    /** A member as {@link #nodes} lists it. */
    default Object nodeView(io.ballast.cluster.NodeRecord n) {
        return n;
    }

    /** The Raft leader's id, null when there is none. */
    default String leader() {
        return null;
    }

    /** The revision (Raft log index) of the metadata this node has applied; read it before the list it labels. */
    default long revision() {
        return 0;
    }

    /** EXPIRED when changes after {@code revision} are no longer kept ({@code what}: "continue token", "watch"). */
    default void requireRetained(long revision, String what) {}

    /** Volume and node changes after {@code since} matching {@code filter}, waiting up to {@code timeoutMs} for one. */
    default io.ballast.cluster.ChangeLog.Batch watch(long since,
            java.util.function.Predicate<io.ballast.cluster.ChangeLog.Change> filter, int max, long timeoutMs) {
        throw io.ballast.common.BallastException.notFound("this node serves no watch");
    }

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
