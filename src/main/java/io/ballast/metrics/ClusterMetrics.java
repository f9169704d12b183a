package io.ballast.metrics;

import io.ballast.cluster.ClusterMember;
import io.ballast.cluster.ClusterState;
import io.ballast.cluster.NodeRecord;
import io.ballast.cluster.VolumeRecord;
import io.ballast.control.ClusterVolumeService;
import io.prometheus.metrics.core.metrics.GaugeWithCallback;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Control-plane gauges, read from this node's copy of the metadata at scrape time (no Raft round
 * trip: /metrics must answer even without a quorum). Like {@link Metrics}, registered once per JVM;
 * the member started last is the one reported.
 */
public final class ClusterMetrics {
    private static final AtomicReference<ClusterMember> MEMBER = new AtomicReference<>();

    static {
        GaugeWithCallback.builder().name("ballast_node_state").help("1 for the state each member is in (up, suspect, down)")
                .labelNames("node", "state").callback(cb -> {
                    ClusterMember m = MEMBER.get();
                    if (m != null) {
                        for (NodeRecord n : m.state().nodes()) {
                            for (String s : new String[] {NodeRecord.UP, NodeRecord.SUSPECT, NodeRecord.DOWN}) {
                                cb.call(s.equals(n.state()) ? 1 : 0, n.id(), s);
                            }
                        }
                    }
                }).register();
        GaugeWithCallback.builder().name("ballast_node_cordoned").help("1 when the member is cordoned")
                .labelNames("node").callback(cb -> {
                    ClusterMember m = MEMBER.get();
                    if (m != null) {
                        m.state().nodes().forEach(n -> cb.call(n.cordoned() ? 1 : 0, n.id()));
                    }
                }).register();
        GaugeWithCallback.builder().name("ballast_raft_term").help("Current Raft term seen by this node")
                .callback(cb -> {
                    ClusterMember m = MEMBER.get();
                    if (m != null) {
                        m.raftIfStarted().ifPresent(r -> cb.call(r.term()));
                    }
                }).register();
        GaugeWithCallback.builder().name("ballast_raft_commit_index").help("This node's Raft commit index (log entries committed)")
                .callback(cb -> {
                    ClusterMember m = MEMBER.get();
                    if (m != null) {
                        m.raftIfStarted().ifPresent(r -> cb.call(r.commitIndex()));
                    }
                }).register();
        io.prometheus.metrics.core.metrics.CounterWithCallback.builder().name("ballast_heartbeats_sent")
                .help("Heartbeats this node sent: lease (liveness only, not logged) or committed (a Raft log entry)")
                .labelNames("kind").callback(cb -> {
                    ClusterMember m = MEMBER.get();
                    if (m != null) {
                        m.heartbeatCounts().forEach((kind, n) -> cb.call(n, kind));
                    }
                }).register();
        GaugeWithCallback.builder().name("ballast_raft_role").help("1 for this node's Raft role (leader, follower, listener, candidate)")
                .labelNames("role").callback(cb -> {
                    ClusterMember m = MEMBER.get();
                    if (m != null) {
                        m.raftIfStarted().ifPresent(r -> cb.call(1, r.role()));
                    }
                }).register();
        GaugeWithCallback.builder().name("ballast_cluster_capacity_bytes")
                .help("Capacity of up nodes, their free bytes, and bytes provisioned to replicas")
                .labelNames("kind").callback(cb -> {
                    ClusterMember m = MEMBER.get();
                    if (m != null) {
                        ClusterState s = m.state();
                        long cap = 0;
                        long free = 0;
                        for (NodeRecord n : s.nodes()) {
                            if (NodeRecord.UP.equals(n.state())) {
                                cap += n.capacityBytes();
                                free += n.freeBytes();
                            }
                        }
                        cb.call(cap, "capacity");
                        cb.call(free, "free");
                        cb.call(s.provisionedByNode().values().stream().mapToLong(Long::longValue).sum(), "provisioned");
                    }
                }).register();
        GaugeWithCallback.builder().name("ballast_cluster_volumes").help("Volumes in the cluster by health")
                .labelNames("health").callback(cb -> {
                    ClusterMember m = MEMBER.get();
                    if (m != null) {
                        ClusterState s = m.state();
                        Map<String, Integer> by = new TreeMap<>(Map.of("healthy", 0, "degraded", 0, "creating", 0, "unavailable", 0));
                        for (VolumeRecord v : s.volumes()) {
                            by.merge(ClusterVolumeService.health(v, id -> s.node(id).map(NodeRecord::state)), 1, Integer::sum);
                        }
                        by.forEach((h, c) -> cb.call(c, h));
                    }
                }).register();
    }

    private ClusterMetrics() {}

    public static void track(ClusterMember member) {
        MEMBER.set(member);
    }
}
