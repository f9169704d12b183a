package io.ballast.cluster;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.function.LongSupplier;
import org.apache.ratis.proto.RaftProtos.RoleInfoProto;
import org.apache.ratis.proto.RaftProtos.ServerRpcProto;

/**
 * Tells a request that cannot get a Raft majority so, at once, instead of letting it wait for the whole
 * request timeout (a status call once took 21.8 s to say "no leader"). Two conditions, both needed:
 * this node has been without a working leader for longer than {@link #leaderlessAfterMs}, and fewer
 * than a majority of the voters accept a TCP connection on their Raft port. The second keeps an
 * election in progress (the voters are up, one of them will win) from being reported as a lost quorum.
 */
public final class QuorumWatch {
    /** A voter's Raft port that does not accept a connection within this is counted unreachable. */
    static final int PROBE_TIMEOUT_MS = 300;
    /** Probe results are reused for this long, so a burst of refused requests probes once. */
    static final long PROBE_CACHE_MS = 1000;
    private static final ExecutorService PROBES = Executors.newVirtualThreadPerTaskExecutor();

    /** What this node can see of its quorum now. {@code ok} false: requests fail fast with {@link #reason()}. */
    public record View(boolean ok, int voters, List<String> reachable, List<String> unreachable, long leaderlessMs) {
        public int majority() {
            return voters / 2 + 1;
        }

        /** The user's words: what is wrong and what to do. */
        public String reason() {
            return "quorum lost: " + reachable.size() + " of " + voters + " voters reachable"
                    + (reachable.isEmpty() ? "" : " (" + String.join(", ", reachable) + ")")
                    + ", a majority of " + majority() + " is needed; unreachable: " + String.join(", ", unreachable)
                    + ". The metadata cannot change and reads cannot be confirmed until a majority is back: start the stopped"
                    + " nodes (`ballast up` for a local cluster) or restore the network between them;"
                    + " `ballast status` shows this node's last known view";
        }
    }

    private final String selfId;
    private final long leaderlessAfterMs;
    private final LongSupplier clockMs;
    private volatile Probe lastProbe;

    private record Probe(long atMs, Map<String, String> addresses, List<String> reachable) {}

    /** {@code leaderlessAfterMs}: a few election timeouts, so an ordinary election never trips it. */
    public QuorumWatch(String selfId, long leaderlessAfterMs, LongSupplier clockMs) {
        this.selfId = selfId;
        this.leaderlessAfterMs = leaderlessAfterMs;
        this.clockMs = clockMs;
    }

    /**
     * How long this node has had no working leader, from Ratis' role info: 0 for a leader still hearing
     * from a majority of voters or a follower hearing its leader. {@code sinceStartMs} caps it, so a
     * node that just started is not judged before it could have heard anyone.
     */
    long leaderlessMs(RoleInfoProto role, java.util.Set<String> voterIds, long sinceStartMs) {
        int voters = Math.max(1, voterIds.size());
        long ms;
        switch (role.getRole()) {
            case LEADER -> {
                // a leader has a majority while enough followers answered recently: the time since it lost
                // one is how long ago the (majority-1)-th most recent follower answered
                long[] elapsed = role.getLeaderInfo().getFollowerInfoList().stream()
                        .filter(f -> voterIds.contains(f.getId().getId().toStringUtf8()))
                        .mapToLong(ServerRpcProto::getLastRpcElapsedTimeMs).sorted().toArray();
                int needed = voters / 2; // followers needed besides the leader itself
                ms = needed == 0 ? 0 : needed <= elapsed.length ? elapsed[needed - 1] : role.getRoleElapsedTimeMs();
            }
            case CANDIDATE -> ms = role.getCandidateInfo().getLastLeaderElapsedTimeMs();
            default -> {
                var f = role.getFollowerInfo();
                ms = f.hasLeaderInfo() && f.getLeaderInfo().hasId() && !f.getLeaderInfo().getId().getId().isEmpty()
                        ? f.getLeaderInfo().getLastRpcElapsedTimeMs()
                        : role.getRoleElapsedTimeMs();
            }
        }
        return Math.max(0, Math.min(ms, sinceStartMs));
    }

    /**
     * The view for a node whose role info is {@code role}; {@code voterAddresses} maps each voter's id to
     * its Raft address (host:port). Probes the other voters only when the node has been leaderless long
     * enough to matter.
     */
    public View view(RoleInfoProto role, Map<String, String> voterAddresses, long sinceStartMs) {
        int voters = Math.max(1, voterAddresses.size());
        long leaderless = leaderlessMs(role, voterAddresses.keySet(), sinceStartMs);
        if (leaderless < leaderlessAfterMs) {
            return new View(true, voters, List.copyOf(voterAddresses.keySet()), List.of(), leaderless);
        }
        List<String> reachable = probe(voterAddresses);
        List<String> unreachable = voterAddresses.keySet().stream().filter(id -> !reachable.contains(id)).sorted().toList();
        return new View(reachable.size() * 2 > voters, voters, reachable, unreachable, leaderless);
    }

    private List<String> probe(Map<String, String> voterAddresses) {
        long now = clockMs.getAsLong();
        Probe p = lastProbe;
        if (p != null && now - p.atMs() < PROBE_CACHE_MS && p.addresses().equals(voterAddresses)) {
            return p.reachable();
        }
        List<CompletableFuture<String>> calls = new ArrayList<>();
        for (var e : voterAddresses.entrySet()) {
            if (e.getKey().equals(selfId)) {
                calls.add(CompletableFuture.completedFuture(e.getKey()));
                continue;
            }
            calls.add(CompletableFuture.supplyAsync(() -> accepts(e.getValue()) ? e.getKey() : null, PROBES));
        }
        List<String> reachable = calls.stream().map(CompletableFuture::join).filter(java.util.Objects::nonNull).sorted().toList();
        lastProbe = new Probe(now, Map.copyOf(voterAddresses), reachable);
        return reachable;
    }

    /** Whether something accepts a TCP connection at host:port (no bytes are sent: TLS or not, same answer). */
    static boolean accepts(String hostPort) {
        int colon = hostPort.lastIndexOf(':');
        if (colon < 0) {
            return false;
        }
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress(hostPort.substring(0, colon), Integer.parseInt(hostPort.substring(colon + 1))),
                    PROBE_TIMEOUT_MS);
            return true;
        } catch (IOException | IllegalArgumentException e) {
            return false;
        }
    }
}
