package io.ballast.cluster;

import io.ballast.keys.VolumeEncryption;
import io.ballast.common.ProtocolVersion;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

/**
 * What a Raft write must pass on the leader before it is appended to the log: a member's
 * {@link CommandSeal}, then a {@link Command} that decodes and carries the fields apply relies on.
 * A refused write never reaches the log, so no node applies it. (Whether a well-formed command is
 * allowed in the current state, e.g. a volume that exists, stays apply's decision: it is deterministic
 * and answers the client with the reason.)
 */
final class CommandGate {
    /** The largest command accepted (the largest real one, a RegisterNode with many labels, is a few KiB). */
    static final int MAX_COMMAND_BYTES = 1 << 20;

    /**
     * The cluster protocol that introduced a command, for commands newer than 1.0 (none yet: every command
     * of this build is of cluster protocol 1.0). A minor release that adds a command lists it here; the
     * leader then refuses it until every member records that minor (docs/operations.md "Versions and
     * compatibility"): a member of the previous minor could not apply it.
     */
    static final Map<Class<? extends Command>, ProtocolVersion> INTRODUCED_IN = Map.of();

    private final CommandSeal seal;
    private final Supplier<ClusterState> state;
    private final Map<Class<? extends Command>, ProtocolVersion> introducedIn;

    CommandGate(CommandSeal seal) {
        this(seal, null, INTRODUCED_IN);
    }

    /** Refuses commands a member of {@code state} does not speak yet, as {@code introducedIn} says. */
    CommandGate(CommandSeal seal, Supplier<ClusterState> state, Map<Class<? extends Command>, ProtocolVersion> introducedIn) {
        this.seal = seal;
        this.state = state;
        this.introducedIn = Map.copyOf(introducedIn);
    }

    /** The command's JSON, as the log keeps it; throws {@link CommandSeal.Refused} with the reason. */
    byte[] admit(byte[] message) throws CommandSeal.Refused {
        if (message.length > MAX_COMMAND_BYTES + CommandSeal.HEADER_BYTES) {
            throw new CommandSeal.Refused("the command is " + message.length + " bytes, over the limit of " + MAX_COMMAND_BYTES);
        }
        byte[] json = seal.open(message);
        Command c = decode(json);
        if (c instanceof Command.RecoverCluster) {
            // removes every member but one: only `ballast cluster recover`, offline, applies it
            throw new CommandSeal.Refused("RecoverCluster is applied only offline, by `ballast cluster recover --data-dir DIR` on a stopped node");
        }
        validate(c);
        requireEveryMemberSpeaks(c);
        return json;
    }

    /** A command of a newer minor than some member records: refused, naming the members behind. */
    void requireEveryMemberSpeaks(Command c) throws CommandSeal.Refused {
        ProtocolVersion needs = introducedIn.get(c.getClass());
        if (needs == null || state == null) {
            return;
        }
        List<String> behind = new ArrayList<>();
        for (NodeRecord n : state.get().nodes()) {
            if (n.protocol().compareTo(needs) < 0) {
                behind.add(n.id() + " (" + n.protocol() + ")");
            }
        }
        if (!behind.isEmpty()) {
            throw new CommandSeal.Refused(c.getClass().getSimpleName() + " needs cluster protocol " + needs
                    + " on every member and " + String.join(", ", behind) + (behind.size() == 1 ? " runs" : " run")
                    + " an older one: finish the rolling upgrade first (docs/operations.md \"Rolling upgrade\"; `ballast node list`"
                    + " shows each member's protocolVersion)");
        }
    }

    static Command decode(byte[] json) throws CommandSeal.Refused {
        Command c;
        try {
            c = ClusterState.JSON.readValue(json, Command.class);
        } catch (IOException | RuntimeException e) {
            throw new CommandSeal.Refused("not a command: " + firstLine(e.getMessage()));
        }
        if (c == null) {
            throw new CommandSeal.Refused("not a command: null");
        }
        return c;
    }

    /** The fields every apply of the command reads; refused with the first one missing. */
    static void validate(Command c) throws CommandSeal.Refused {
        require(c.at(), "at");
        switch (c) {
            case Command.RegisterNode r -> {
                require(r.nodeId(), "nodeId");
                require(r.apiUrl(), "apiUrl");
                require(r.raftAddress(), "raftAddress");
            }
            case Command.Heartbeat h -> require(h.nodeId(), "nodeId");
            case Command.MarkNodeState m -> {
                require(m.nodeId(), "nodeId");
                require(m.state(), "state");
            }
            case Command.SetCordon s -> require(s.nodeId(), "nodeId");
            case Command.SetRaftRole s -> {
                require(s.nodeId(), "nodeId");
                require(s.role(), "role");
            }
            case Command.DrainNode d -> require(d.nodeId(), "nodeId");
            case Command.DrainReplicas d -> {
                require(d.nodeId(), "nodeId");
                if (d.volumes() == null || d.volumes().stream().anyMatch(java.util.Objects::isNull)) {
                    throw new CommandSeal.Refused("invalid command: 'volumes' must be a list of volume names");
                }
            }
            case Command.RemoveNode r -> require(r.nodeId(), "nodeId");
            case Command.RecoverCluster r -> require(r.survivorNodeId(), "survivorNodeId");
            case Command.CreateVolume cv -> {
                require(cv.name(), "name");
                require(cv.uuid(), "uuid");
                if (cv.encryption() != null) {
                    requireEncryption(cv.encryption(), "encryption");
                }
                if (cv.shared()) {
                    // the name becomes an NFS pseudo path and a line of the server's configuration
                    requireSharedName(cv.name());
                }
            }
            case Command.DeleteVolume dv -> require(dv.name(), "name");
            case Command.ResizeVolume rv -> require(rv.name(), "name");
            case Command.SetVolumeQos q -> {
                require(q.name(), "name");
                if (q.maxIops() < 0 || q.maxBandwidthBytes() < 0 || q.minIops() < 0) {
                    throw new CommandSeal.Refused("invalid command: maxIops, maxBandwidthBytes and minIops must be >= 0 (0: none)");
                }
                String minAboveMax = QosLimits.minAboveMax(q.maxIops(), q.minIops());
                if (minAboveMax != null) {
                    throw new CommandSeal.Refused("invalid command: " + minAboveMax);
                }
            }
            case Command.SetReplicaState s -> {
                require(s.volume(), "volume");
                require(s.nodeId(), "nodeId");
                require(s.state(), "state");
            }
            case Command.MarkReplicasReady m -> {
                require(m.nodeId(), "nodeId");
                requireObject(m.volumes(), "volumes");
            }
            case Command.Attach a -> {
                require(a.volume(), "volume");
                requireObject(a.attachment(), "attachment");
                require(a.attachment().nodeId(), "attachment.nodeId");
            }
            case Command.Detach d -> {
                require(d.volume(), "volume");
                require(d.nodeId(), "nodeId");
            }
            case Command.ChangeInSync cis -> require(cis.volume(), "volume");
            case Command.ReplaceReplica rr -> {
                require(rr.volume(), "volume");
                require(rr.nodeId(), "nodeId");
            }
            case Command.AddReplica ar -> require(ar.volume(), "volume");
            case Command.SetSettings ss -> requireObject(ss.settings(), "settings");
            case Command.CreateSnapshot cs -> {
                require(cs.volume(), "volume");
                require(cs.name(), "name");
                require(cs.uuid(), "uuid");
                requireObject(cs.nodes(), "nodes");
            }
            case Command.DeleteSnapshot ds -> {
                require(ds.volume(), "volume");
                require(ds.name(), "name");
            }
            case Command.AddSnapshotHolder ah -> {
                require(ah.volume(), "volume");
                require(ah.volumeUuid(), "volumeUuid");
                require(ah.nodeId(), "nodeId");
                requireObject(ah.snapshotUuids(), "snapshotUuids");
            }
            case Command.RecordSweptSnapshotLayers rs -> {
                require(rs.volume(), "volume");
                require(rs.nodeId(), "nodeId");
                requireObject(rs.snapshotUuids(), "snapshotUuids");
            }
            case Command.RecordSnapshotCopy rc -> {
                require(rc.volume(), "volume");
                require(rc.nodeId(), "nodeId");
                require(rc.outcome(), "outcome");
                if (!java.util.Set.of(Command.COPY_STARTED, Command.COPY_RETRYING, Command.COPY_ABANDONED).contains(rc.outcome())) {
                    throw new CommandSeal.Refused("invalid command: outcome must be " + Command.COPY_STARTED + ", "
                            + Command.COPY_RETRYING + " or " + Command.COPY_ABANDONED + ", got " + rc.outcome());
                }
            }
            case Command.SetBackupTarget sb -> {
                requireObject(sb.target(), "target");
                require(sb.target().name(), "target.name");
            }
            case Command.RemoveBackupTarget rb -> require(rb.name(), "name");
            case Command.SetSnapshotSchedule ss -> require(ss.volume(), "volume");
            case Command.DeleteSnapshotSchedule ds -> require(ds.volume(), "volume");
            case Command.ClaimScheduledSnapshot cs -> {
                require(cs.volume(), "volume");
                require(cs.snapshot(), "snapshot");
            }
            case Command.FinishScheduledSnapshot fs -> {
                require(fs.volume(), "volume");
                require(fs.snapshot(), "snapshot");
            }
            case Command.StartCaRotation sr -> {
                require(sr.at(), "at");
                require(sr.signerNodeId(), "signerNodeId");
                requireCa(sr.oldCaPem(), "oldCaPem");
                requireCa(sr.newCaPem(), "newCaPem");
            }
            case Command.AckCaRotation ar -> {
                require(ar.nodeId(), "nodeId");
                require(ar.newCaSha256(), "newCaSha256");
                if (!CaRotation.TRUST.equals(ar.phase()) && !CaRotation.REISSUE.equals(ar.phase())) {
                    throw new CommandSeal.Refused("invalid command: 'phase' must be trust or reissue");
                }
            }
            case Command.AdvanceCaRotation ar -> {
                require(ar.newCaSha256(), "newCaSha256");
                if (!CaRotation.TRUST.equals(ar.fromPhase()) && !CaRotation.REISSUE.equals(ar.fromPhase())) {
                    throw new CommandSeal.Refused("invalid command: 'fromPhase' must be trust or reissue");
                }
            }
            case Command.RevokeCertificates rc -> {
                require(rc.nodeId(), "nodeId");
                require(rc.at(), "at");
                try {
                    java.time.Instant.parse(rc.at());
                } catch (java.time.format.DateTimeParseException e) {
                    throw new CommandSeal.Refused("invalid command: 'at' is not an ISO-8601 instant");
                }
            }
            case Command.CreateApiToken t -> {
                require(t.id(), "id");
                require(t.name(), "name");
                require(t.role(), "role");
                require(t.secretSha256(), "secretSha256");
            }
            case Command.RevokeApiToken t -> require(t.id(), "id");
            case Command.ReportEngineFenced f -> {
                require(f.volume(), "volume");
                require(f.nodeId(), "nodeId");
            }
            case Command.RecordApiCall r -> {
                require(r.principal(), "principal");
                require(r.method(), "method");
                require(r.path(), "path");
            }
            case Command.RecordApiCalls rs -> {
                if (rs.calls() == null || rs.calls().isEmpty() || rs.calls().size() > Command.RecordApiCalls.MAX_CALLS) {
                    throw new CommandSeal.Refused("invalid command: RecordApiCalls needs 1 to " + Command.RecordApiCalls.MAX_CALLS + " calls");
                }
                for (Command.RecordApiCall r : rs.calls()) {
                    if (r == null) {
                        throw new CommandSeal.Refused("invalid command: RecordApiCalls has an empty call");
                    }
                    validate(r);
                }
            }
            case Command.CloneVolume cv -> {
                require(cv.name(), "name");
                require(cv.uuid(), "uuid");
                require(cv.volume(), "volume");
                require(cv.snapshot(), "snapshot");
            }
            case Command.RewrapVolumeKeys rk -> {
                require(rk.expectedKeyId(), "expectedKeyId");
                require(rk.newKeyId(), "newKeyId");
                requireObject(rk.uuids(), "uuids");
                requireObject(rk.keys(), "keys");
                for (var e : rk.keys().entrySet()) {
                    requireEncryption(e.getValue(), "keys." + e.getKey());
                    if (!rk.newKeyId().equals(e.getValue().keyId())) {
                        throw new CommandSeal.Refused("invalid command: keys." + e.getKey() + " is not wrapped by the new key");
                    }
                }
            }
        }
    }

    private static void requireEncryption(VolumeEncryption e, String field) throws CommandSeal.Refused {
        requireObject(e, field);
        if (!VolumeEncryption.AES_256_GCM.equals(e.algorithm())) {
            throw new CommandSeal.Refused("invalid command: " + field + ".algorithm must be " + VolumeEncryption.AES_256_GCM);
        }
        require(e.wrappedKey(), field + ".wrappedKey");
        require(e.keyId(), field + ".keyId");
        byte[] wrapped;
        try {
            wrapped = java.util.Base64.getDecoder().decode(e.wrappedKey());
        } catch (IllegalArgumentException bad) {
            throw new CommandSeal.Refused("invalid command: " + field + ".wrappedKey is not base64");
        }
        if (wrapped.length != 40) { // a 32-byte key wrapped with RFC 3394: 40 bytes
            throw new CommandSeal.Refused("invalid command: " + field + ".wrappedKey is not a wrapped 256-bit key");
        }
    }

    private static void requireSharedName(String name) throws CommandSeal.Refused {
        try {
            io.ballast.common.Names.requireVolumeName(name);
        } catch (io.ballast.common.BallastException e) {
            throw new CommandSeal.Refused("invalid command: shared volume: " + e.getMessage());
        }
    }

    /** A PEM CA certificate (basicConstraints CA:true): applying must not fail on it later. */
    private static void requireCa(String pem, String field) throws CommandSeal.Refused {
        require(pem, field);
        try {
            if (io.ballast.security.Pem.certificate(pem).getBasicConstraints() < 0) {
                throw new CommandSeal.Refused("invalid command: " + field + " is not a CA certificate");
            }
        } catch (IllegalArgumentException e) {
            throw new CommandSeal.Refused("invalid command: " + field + " is not a PEM certificate");
        }
    }

    private static void require(String value, String field) throws CommandSeal.Refused {
        if (value == null || value.isBlank()) {
            throw new CommandSeal.Refused("invalid command: " + field + " is missing");
        }
    }

    private static void requireObject(Object value, String field) throws CommandSeal.Refused {
        if (value == null) {
            throw new CommandSeal.Refused("invalid command: " + field + " is missing");
        }
    }

    private static String firstLine(String s) {
        if (s == null) {
            return "unreadable";
        }
        int nl = s.indexOf('\n');
        String line = nl < 0 ? s : s.substring(0, nl);
        return line.length() > 200 ? line.substring(0, 200) + "..." : line;
    }
}
