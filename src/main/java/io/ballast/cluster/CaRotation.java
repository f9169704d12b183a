package io.ballast.cluster;

import java.util.Map;
import java.util.TreeMap;

/**
 * A rotation of the cluster CA, kept in the Raft state (docs/security.md, "Rotating the cluster CA").
 * Phases: {@value #TRUST} (every member trusts the old and the new CA), {@value #REISSUE} (every member
 * renews its certificate from the new CA), {@value #DONE} (the old CA is trusted no more). The leader
 * moves to the next phase once every member acknowledged the current one. Certificates only (PEM),
 * never a key: the new CA's key stays on the node that started the rotation.
 *
 * @param acks node id to the last phase it acknowledged
 * @param by who started it ({@code alice (admin)})
 */
public record CaRotation(String phase, String oldCaPem, String newCaPem, String oldCaSha256, String newCaSha256,
        String signerNodeId, String startedAt, String finishedAt, String by, Map<String, String> acks) {
    public static final String TRUST = "trust";
    public static final String REISSUE = "reissue";
    public static final String DONE = "done";

    public CaRotation {
        acks = acks == null ? Map.of() : Map.copyOf(new TreeMap<>(acks));
    }

    public boolean inProgress() {
        return !DONE.equals(phase);
    }

    /** The phase after {@code phase}, or null after the last. */
    public static String next(String phase) {
        return switch (phase) {
            case TRUST -> REISSUE;
            case REISSUE -> DONE;
            default -> null;
        };
    }

    /** The phase's number, as `ballast status` shows it (1 to 3). */
    public int phaseNumber() {
        return switch (phase) {
            case TRUST -> 1;
            case REISSUE -> 2;
            default -> 3;
        };
    }

    /** Whether {@code nodeId} acknowledged the current phase. */
    public boolean acked(String nodeId) {
        return phase.equals(acks.get(nodeId));
    }

    CaRotation ack(String nodeId) {
        TreeMap<String, String> a = new TreeMap<>(acks);
        a.put(nodeId, phase);
        return new CaRotation(phase, oldCaPem, newCaPem, oldCaSha256, newCaSha256, signerNodeId, startedAt, finishedAt, by, a);
    }

    CaRotation advance(String at) {
        String to = next(phase);
        return new CaRotation(to, oldCaPem, newCaPem, oldCaSha256, newCaSha256, signerNodeId, startedAt,
                DONE.equals(to) ? at : null, by, acks);
    }
}
