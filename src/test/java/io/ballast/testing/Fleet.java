package io.ballast.testing;

import com.fasterxml.jackson.databind.JsonNode;
import io.ballast.cli.NodeClient;
import io.ballast.cluster.ClusterMember;
import io.ballast.cluster.ClusterTimings;
import io.ballast.cluster.Command;
import io.ballast.cluster.NodeRecord;
import io.ballast.cluster.RaftNode;
import io.ballast.common.BallastException;
import java.io.IOException;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.ratis.protocol.RaftPeer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A fleet of simulated members in this JVM, joined to a real cluster: each has a node id, a fake
 * capacity and no storage. They speak the members' real protocols through the real client code
 * ({@link RaftNode#clientOnly}): a sealed {@code RegisterNode} to join the metadata, lease heartbeats
 * ({@code RaftNode.sendLease}, not log entries) and a committed {@code Heartbeat} exactly when
 * {@link ClusterMember#mustCommitHeartbeat} says a node must, and {@code MarkReplicasReady} for the
 * replicas placed on them (the replica-state protocol; there is no storage to create, so a replica is
 * ready as soon as the member learns of it).
 *
 * <p>What they are not: Raft peers. A real join also adds the node to the Raft configuration as a
 * listener (it receives the log), which needs a Raft server per member; the fleet measures the control
 * plane's state, liveness, placement and lists, not the leader's log fan-out to listeners. Because the
 * leader's voter replacement may pick any up member, a test must bring a killed voter back within
 * {@code voterReplaceAfterMs} (docs/perf/scale.md).
 *
 * <p>What a real node learns from its own copy of the metadata (its record, replicas placed on it), the
 * fleet learns from one shared watcher ({@code GET /v1/watch}) of the voters' API: one long poll for
 * the whole fleet instead of a Raft copy per member.
 */
public final class Fleet implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(Fleet.class);

    /** One simulated member. */
    public final class Member {
        public final String id;
        public final long capacityBytes;
        volatile long freeBytes;
        final RaftNode raft;
        volatile boolean alive = true;
        final Semaphore kick = new Semaphore(0);
        final Semaphore readyKick = new Semaphore(0);
        Thread readyLoop;
        /** Volume name -> uuid of replicas placed here and still pending. */
        final Map<String, String> pending = new ConcurrentHashMap<>();
        Thread loop;

        Member(String id, long capacityBytes, RaftNode raft) {
            this.id = id;
            this.capacityBytes = capacityBytes;
            this.freeBytes = capacityBytes;
            this.raft = raft;
        }

        void register() {
            raft.submit(new Command.RegisterNode(Instant.now().toString(), id, "http://127.0.0.1:1/" + id, "fleet:" + id, null,
                    labelsOf.apply(id), capacityBytes, freeBytes), false);
        }

        private void run() {
            long jitterMs = Math.floorMod(id.hashCode(), (int) Math.max(1, timings.heartbeatMs()));
            sleep(jitterMs); // spread the fleet's heartbeats over the period
            while (!closed) {
                try {
                    kick.tryAcquire(timings.heartbeatMs(), java.util.concurrent.TimeUnit.MILLISECONDS);
                } catch (InterruptedException e) {
                    return;
                }
                if (closed || !alive) {
                    continue;
                }
                try {
                    beat();
                } catch (BallastException e) {
                    log.atDebug().addKeyValue("member", id).log("fleet member: {}", e.getMessage());
                } catch (RuntimeException e) {
                    log.atWarn().addKeyValue("member", id).setCause(e).log("fleet member failed a step");
                }
            }
        }

        /** Marks the replicas placed here ready, apart from the heartbeats (as a node's reconciler does). */
        private void readyLoop() {
            while (!closed) {
                try {
                    readyKick.acquire();
                    readyKick.drainPermits();
                } catch (InterruptedException e) {
                    return;
                }
                if (closed || !alive) {
                    continue;
                }
                try {
                    markReady();
                } catch (RuntimeException e) {
                    log.atDebug().addKeyValue("member", id).log("fleet member: replicas not marked ready yet: {}", e.getMessage());
                    sleep(timings.heartbeatMs());
                    readyKick.release(); // try again
                }
            }
        }

        /** As ClusterMember.registerOrHeartbeat, with the shared view as this member's copy of its record. */
        private void beat() {
            NodeRecord me = nodes.get(id);
            Instant now = Instant.now();
            if (me == null) {
                register();
                commits.incrementAndGet();
            } else if (ClusterMember.mustCommitHeartbeat(me, capacityBytes, freeBytes, now)) {
                raft.submit(new Command.Heartbeat(now.toString(), id, capacityBytes, freeBytes), false);
                commits.incrementAndGet();
            } else {
                raft.sendLease();
                leases.incrementAndGet();
            }
        }

        private void markReady() {
            if (pending.isEmpty()) {
                return;
            }
            Map<String, String> batch = new TreeMap<>(pending);
            raft.submit(new Command.MarkReplicasReady(Instant.now().toString(), id, batch), false);
            batch.forEach(pending::remove);
            readyCommits.incrementAndGet();
        }

        /** Goes silent, as a killed node does (its loop keeps running but sends nothing). */
        public void kill() {
            alive = false;
        }

        public void revive() {
            alive = true;
            kick.release();
        }
    }

    private final List<String> apiUrls;
    private final String adminToken;
    private final String clusterToken;
    private final ClusterTimings timings;
    private final java.util.function.Function<String, Map<String, String>> labelsOf;
    private final Map<String, Member> members = new ConcurrentHashMap<>();
    /** Every member of the cluster as the shared watcher last saw it. */
    private final Map<String, NodeRecord> nodes = new ConcurrentHashMap<>();
    private final AtomicLong leases = new AtomicLong();
    private final AtomicLong commits = new AtomicLong();
    private final AtomicLong readyCommits = new AtomicLong();
    private final AtomicLong stateChanges = new AtomicLong();
    /** Every change of a member to suspect or down the watcher saw, in order: "id=state (reason)". */
    private final List<String> judged = java.util.Collections.synchronizedList(new ArrayList<>());
    private volatile long watchedRevision;
    private volatile boolean closed;
    private final Thread watcher;
    private final List<RaftPeer> voters;

    /**
     * @param apiUrls the voters' API addresses (the watcher moves on to the next when one fails)
     * @param labelsOf each member's labels, by its id
     */
    public Fleet(List<String> apiUrls, String adminToken, String clusterToken, ClusterTimings timings,
            java.util.function.Function<String, Map<String, String>> labelsOf) {
        this.apiUrls = List.copyOf(apiUrls);
        this.adminToken = adminToken;
        this.clusterToken = clusterToken;
        this.timings = timings;
        this.labelsOf = labelsOf;
        this.voters = votersOf(client(0).get("/v1/nodes"));
        if (voters.isEmpty()) {
            throw new IllegalStateException("no Raft voter listed by " + apiUrls.getFirst());
        }
        watchedRevision = relist();
        watcher = Thread.ofVirtual().name("fleet-watch").start(this::watchLoop);
    }

    private NodeClient client(int i) {
        return new NodeClient(apiUrls.get(Math.floorMod(i, apiUrls.size())), adminToken, Duration.ofSeconds(70));
    }

    private static List<RaftPeer> votersOf(JsonNode list) {
        List<RaftPeer> out = new ArrayList<>();
        for (JsonNode n : list.path("nodes")) {
            if ("voter".equals(n.path("raftRole").asText())) {
                out.add(RaftPeer.newBuilder().setId(n.path("nodeId").asText()).setAddress(n.path("raftAddress").asText()).build());
            }
        }
        return out;
    }

    /** Starts {@code count} members {@code prefix-0001...}, registered {@code parallel} at a time; returns when all are up. */
    public List<Member> start(String prefix, int count, long capacityBytes, int parallel) throws IOException {
        List<Member> made = new ArrayList<>();
        for (int i = 1; i <= count; i++) {
            String id = String.format("%s-%04d", prefix, i);
            Member m = new Member(id, capacityBytes, RaftNode.clientOnly(id, clusterToken, timings, voters));
            members.put(id, m);
            made.add(m);
        }
        Semaphore slots = new Semaphore(parallel);
        List<Thread> regs = new ArrayList<>();
        List<RuntimeException> failures = java.util.Collections.synchronizedList(new ArrayList<>());
        for (Member m : made) {
            slots.acquireUninterruptibly();
            regs.add(Thread.ofVirtual().start(() -> {
                try {
                    m.register();
                    commits.incrementAndGet();
                } catch (RuntimeException e) {
                    failures.add(e);
                } finally {
                    slots.release();
                }
            }));
        }
        for (Thread t : regs) {
            try {
                t.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IOException("interrupted");
            }
        }
        if (!failures.isEmpty()) {
            // a loaded host times some out; as a real node, the member's loop registers again until it is listed
            log.atWarn().log("{} of {} fleet registrations failed at first ({}); their loops retry", failures.size(), count,
                    failures.getFirst().getMessage());
        }
        for (Member m : made) {
            m.loop = Thread.ofVirtual().name("fleet-" + m.id).start(m::run);
            m.readyLoop = Thread.ofVirtual().name("fleet-ready-" + m.id).start(m::readyLoop);
            if (!m.pending.isEmpty()) {
                m.readyKick.release();
            }
        }
        MiniCluster.await(Duration.ofSeconds(120), count + " fleet members up in the watcher's view",
                () -> made.stream().allMatch(m -> nodes.containsKey(m.id) && NodeRecord.UP.equals(nodes.get(m.id).state())));
        return made;
    }

    public Member member(String id) {
        return members.get(id);
    }

    public Collection<Member> members() {
        return members.values();
    }

    /** The state of a member (fleet or not) as the shared watcher last saw it; null before it joined. */
    public String stateOf(String id) {
        NodeRecord n = nodes.get(id);
        return n == null ? null : n.state();
    }

    /** Lease heartbeats sent (not log entries). */
    public long leaseHeartbeats() {
        return leases.get();
    }

    /** Registrations and committed heartbeats sent (log entries). */
    public long committedHeartbeats() {
        return commits.get();
    }

    /** Changes of a member's state (up, suspect, down) the watcher saw, fleet or voter. */
    public long stateChanges() {
        return stateChanges.get();
    }

    /**
     * Every change of a member (fleet or voter) to suspect or down that the watcher saw since the fleet
     * started, in order, as {@code "id=state (reason)"}: unlike polling {@link #stateOf}, a member suspect
     * for a moment is never missed.
     */
    public List<String> judged() {
        synchronized (judged) {
            return List.copyOf(judged);
        }
    }

    /** MarkReplicasReady entries sent. */
    public long readyCommits() {
        return readyCommits.get();
    }

    /** Replicas placed on fleet members and not yet marked ready by them. */
    public int pendingReplicas() {
        return members.values().stream().mapToInt(m -> m.pending.size()).sum();
    }

    public long watchedRevision() {
        return watchedRevision;
    }

    // ---- the shared view ----

    /** Lists every node and volume (pages of 1000) and returns the revision to watch from. */
    private long relist() {
        NodeClient c = client(0);
        long rev = -1;
        String cont = null;
        do {
            JsonNode page = c.get("/v1/nodes?limit=1000" + (cont == null ? "" : "&continue=" + enc(cont)));
            rev = rev < 0 ? page.path("revision").asLong() : rev;
            for (JsonNode n : page.path("nodes")) {
                noteNode(n);
            }
            cont = page.path("continue").asText(null);
        } while (cont != null);
        cont = null;
        do {
            JsonNode page = c.get("/v1/volumes?limit=1000" + (cont == null ? "" : "&continue=" + enc(cont)));
            rev = Math.min(rev, page.path("revision").asLong());
            for (JsonNode v : page.path("volumes")) {
                noteVolume(v, false);
            }
            cont = page.path("continue").asText(null);
        } while (cont != null);
        return rev;
    }

    private void watchLoop() {
        int at = 0;
        while (!closed) {
            try {
                JsonNode b = client(at).get("/v1/watch?since=" + watchedRevision + "&timeoutMs=2000");
                for (JsonNode e : b.path("events")) {
                    if ("node".equals(e.path("kind").asText())) {
                        if ("DELETED".equals(e.path("type").asText())) {
                            nodes.remove(e.path("name").asText());
                        } else {
                            noteNode(e.path("object"));
                        }
                    } else {
                        noteVolume(e.path("object"), "DELETED".equals(e.path("type").asText()));
                    }
                }
                watchedRevision = Math.max(watchedRevision, b.path("revision").asLong());
            } catch (BallastException e) {
                if (closed) {
                    return;
                }
                if (e.code() == io.ballast.common.ErrorCode.EXPIRED) {
                    watchedRevision = relist();
                } else {
                    at++; // that voter is gone or has no quorum: the next one carries on from the same revision
                    sleep(50);
                }
            } catch (RuntimeException e) {
                at++;
                sleep(50);
            }
        }
    }

    private void noteNode(JsonNode n) {
        String id = n.path("nodeId").asText();
        NodeRecord before = nodes.get(id);
        if (before != null && !before.state().equals(n.path("state").asText())) {
            stateChanges.incrementAndGet();
            if (!NodeRecord.UP.equals(n.path("state").asText())) {
                judged.add(id + "=" + n.path("state").asText() + " (" + n.path("stateReason").asText() + ")");
            }
        }
        nodes.put(id, new NodeRecord(id, n.path("apiUrl").asText(null), n.path("raftAddress").asText(null), null, Map.of(),
                n.path("state").asText(), n.path("stateReason").asText(null), n.path("cordoned").asBoolean(),
                n.path("draining").asBoolean(), n.path("raftRole").asText(null), n.path("capacityBytes").asLong(),
                n.path("freeBytes").asLong(), n.path("joinedAt").asText(null), n.path("lastHeartbeatAt").asText(null)));
    }

    private void noteVolume(JsonNode v, boolean deleted) {
        String name = v.path("name").asText();
        for (JsonNode r : v.path("replicas")) {
            Member m = members.get(r.path("nodeId").asText());
            if (m == null) {
                continue;
            }
            if (!deleted && "pending".equals(r.path("state").asText())) {
                if (m.pending.put(name, v.path("uuid").asText()) == null) {
                    m.readyKick.release(); // ready at once, as a node's reconciler is kicked by an applied entry
                }
            } else {
                m.pending.remove(name);
            }
        }
    }

    private static String enc(String s) {
        return URLEncoder.encode(s, StandardCharsets.UTF_8);
    }

    static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** What the members sent, for reports. */
    public Map<String, Long> counts() {
        Map<String, Long> m = new LinkedHashMap<>();
        m.put("leaseHeartbeats", leases.get());
        m.put("committedHeartbeats", commits.get());
        m.put("readyCommits", readyCommits.get());
        m.put("stateChanges", stateChanges.get());
        return m;
    }

    @Override
    public void close() {
        closed = true;
        watcher.interrupt();
        for (Member m : members.values()) {
            if (m.loop != null) {
                m.loop.interrupt();
                m.readyLoop.interrupt();
            }
            try {
                m.raft.close();
            } catch (IOException e) {
                // closing
            }
        }
    }
}
