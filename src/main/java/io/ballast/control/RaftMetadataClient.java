package io.ballast.control;

import com.fasterxml.jackson.databind.JsonNode;
import io.ballast.cluster.ClusterMember;
import io.ballast.cluster.ClusterState;
import io.ballast.cluster.Command;
import io.ballast.cluster.VolumeRecord;
import io.ballast.common.BallastException;
import io.ballast.common.ErrorCode;
import io.ballast.replication.EngineHost;
import io.ballast.replication.MetadataClient;
import java.time.Instant;
import java.util.List;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The engine's {@link MetadataClient} on a cluster member: commits {@link Command.ChangeInSync} through
 * Raft. The submit blocks (quorum round trip), so it runs on a virtual thread and {@code done} runs
 * there. Also tells the local {@link EngineHost} about every committed change of a volume it runs an
 * engine for ({@link #followLayouts}).
 */
public final class RaftMetadataClient implements MetadataClient {
    private static final Logger log = LoggerFactory.getLogger(RaftMetadataClient.class);

    private static final com.fasterxml.jackson.databind.ObjectMapper JSON = io.ballast.common.Json.newMapper()
            .disable(com.fasterxml.jackson.databind.DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES);

    private final ClusterMember member;

    public RaftMetadataClient(ClusterMember member) {
        this.member = member;
    }

    @Override
    public void changeInSync(InSyncChange change, Consumer<Result> done) {
        Thread.ofVirtual().name("ballast-insync-" + change.volumeName()).start(() -> done.accept(commit(change)));
    }

    /** The blocking form (tests, and callers already on a virtual thread). */
    public Result commit(InSyncChange change) {
        try {
            JsonNode r = member.raft().submit(new Command.ChangeInSync(Instant.now().toString(), change.volumeName(),
                    change.expectedEpoch(), change.remove(), change.add(), change.missedSinceGeneration(), change.reason()));
            VolumeRecord v = JSON.treeToValue(r, VolumeRecord.class);
            return new Result.Committed(VolumeLayouts.of(v));
        } catch (BallastException e) {
            if (e.code() == ErrorCode.CONFLICT && e.getMessage() != null && e.getMessage().startsWith(ClusterState.FENCED)) {
                // The refusal comes from the leader's state; this node's copy may not have applied the entry
                // that moved the epoch yet (after a lost quorum, an earlier change of this very engine whose
                // answer was lost commits late). Answered with that stale layout, the engine saw no newer epoch
                // of its own attachment and fenced itself for good, its last resync frozen at 100 %. Catch up
                // first; if that fails, the engine retries rather than fences.
                try {
                    member.raft().barrier();
                } catch (BallastException notCaughtUp) {
                    return new Result.Unavailable("in-sync change refused at epoch " + change.expectedEpoch()
                            + " and this node cannot catch up to see why: " + notCaughtUp.getMessage());
                }
                return member.state().volume(change.volumeName())
                        .<Result>map(v -> new Result.Fenced(VolumeLayouts.of(v)))
                        .orElseGet(() -> new Result.Unavailable("volume " + change.volumeName() + " is gone"));
            }
            if (e.code() == ErrorCode.NOT_FOUND) {
                // the volume was deleted: no epoch can match any more, so the engine is superseded
                log.atWarn().addKeyValue("volume", change.volumeName()).log("in-sync change for a deleted volume");
            }
            return new Result.Unavailable(e.code() + ": " + e.getMessage());
        } catch (com.fasterxml.jackson.core.JsonProcessingException | RuntimeException e) {
            return new Result.Unavailable("in-sync change not committed: " + e);
        }
    }

    /**
     * Registers a listener on the state machine: after every committed command that may change a
     * volume, {@code host.layoutChanged} gets the new layout of each volume with an engine on this node.
     */
    public static void followLayouts(ClusterMember member, EngineHost host) {
        member.stateMachine().onApplied((cmd, ok) -> {
            if (!ok) {
                return;
            }
            // the volumes the command changed (null: possibly any); named ones are looked up, not found by a
            // walk over every volume (this runs on the apply thread, for every entry)
            java.util.Collection<String> names = switch (cmd) {
                case Command.ChangeInSync c -> List.of(c.volume());
                case Command.ReplaceReplica r -> List.of(r.volume());
                case Command.AddReplica r -> List.of(r.volume());
                case Command.ResizeVolume r -> List.of(r.name());
                case Command.Attach a -> List.of(a.volume());
                case Command.Detach d -> List.of(d.volume());
                case Command.SetReplicaState s -> List.of(s.volume());
                case Command.MarkReplicasReady m -> m.volumes().keySet();
                case Command.RegisterNode r -> {
                    host.replicaNodeReturned(r.nodeId()); // e.g. restarted, with a new replication address
                    yield List.of();
                }
                case Command.DrainNode d -> null; // several volumes
                case Command.RemoveNode r -> null;
                default -> List.of();
            };
            List<VolumeRecord> changed = names == null ? member.state().volumes()
                    : names.stream().flatMap(n -> member.state().volume(n).stream()).toList();
            for (VolumeRecord v : changed) {
                if (host.device(v.name()).isPresent()) {
                    layoutChanged(host, v);
                }
            }
        });
    }

    private static void layoutChanged(EngineHost host, VolumeRecord v) {
        try {
            host.layoutChanged(VolumeLayouts.of(v));
        } catch (RuntimeException e) {
            log.atWarn().setCause(e).addKeyValue("volume", v.name()).log("engine refused a layout change");
        }
    }
}
