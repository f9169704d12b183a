package io.ballast.cluster;

import com.fasterxml.jackson.annotation.JsonSubTypes;
import com.fasterxml.jackson.annotation.JsonTypeInfo;
import io.ballast.control.Attachment;
import java.util.Map;

/**
 * The writes of the cluster metadata: each is one Raft log entry, applied by {@link ClusterState}
 * on every node in the same order. Commands carry everything apply needs (the proposer's time,
 * generated ids, the over-commit ratio), so apply is deterministic. A command that is refused
 * (validation, placement) changes nothing.
 */
@JsonTypeInfo(use = JsonTypeInfo.Id.NAME, property = "type")
@JsonSubTypes({
        @JsonSubTypes.Type(value = Command.RegisterNode.class, name = "RegisterNode"),
        @JsonSubTypes.Type(value = Command.Heartbeat.class, name = "Heartbeat"),
        @JsonSubTypes.Type(value = Command.MarkNodeState.class, name = "MarkNodeState"),
        @JsonSubTypes.Type(value = Command.SetCordon.class, name = "SetCordon"),
        @JsonSubTypes.Type(value = Command.SetRaftRole.class, name = "SetRaftRole"),
        @JsonSubTypes.Type(value = Command.DrainNode.class, name = "DrainNode"),
        @JsonSubTypes.Type(value = Command.RemoveNode.class, name = "RemoveNode"),
        @JsonSubTypes.Type(value = Command.CreateVolume.class, name = "CreateVolume"),
        @JsonSubTypes.Type(value = Command.DeleteVolume.class, name = "DeleteVolume"),
        @JsonSubTypes.Type(value = Command.SetReplicaState.class, name = "SetReplicaState"),
        @JsonSubTypes.Type(value = Command.Attach.class, name = "Attach"),
        @JsonSubTypes.Type(value = Command.Detach.class, name = "Detach"),
})
public sealed interface Command {

    /** The proposer's wall clock, ISO-8601: recorded, never compared across nodes inside apply. */
    String at();

    /** A node joins (or rejoins with the same id and address). */
    record RegisterNode(String at, String nodeId, String apiUrl, String raftAddress, String nbdTcp,
            Map<String, String> labels, long capacityBytes, long freeBytes) implements Command {}

    /** A node is alive; carries its capacity. Brings a suspect or down node back up. */
    record Heartbeat(String at, String nodeId, long capacityBytes, long freeBytes) implements Command {}

    /**
     * The leader's failure detector: {@code state} for {@code nodeId} because {@code reason}. Ignored
     * when the node heartbeated after the detector looked ({@code observedHeartbeatAt} differs).
     */
    record MarkNodeState(String at, String nodeId, String state, String reason, String observedHeartbeatAt)
            implements Command {}

    record SetCordon(String at, String nodeId, boolean cordoned) implements Command {}

    record SetRaftRole(String at, String nodeId, String role) implements Command {}

    /** Cordon, then place a replacement for every replica on the node. */
    record DrainNode(String at, String nodeId, double overcommitRatio) implements Command {}

    /** Forget a node. Refused while it holds replicas unless {@code force}. */
    record RemoveNode(String at, String nodeId, boolean force) implements Command {}

    /** {@code repl} 0 means the default: min(3, failure domains). {@code spreadBy} null means auto. */
    record CreateVolume(String at, String name, String uuid, long sizeBytes, int repl, String spreadBy,
            double overcommitRatio) implements Command {}

    record DeleteVolume(String at, String name) implements Command {}

    record SetReplicaState(String at, String volume, String nodeId, String state) implements Command {}

    record Attach(String at, String volume, Attachment attachment) implements Command {}

    record Detach(String at, String volume, String nodeId) implements Command {}
}
