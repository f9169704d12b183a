package io.ballast.cluster;

import static io.ballast.common.Sleeps.sleepMs;

import com.fasterxml.jackson.databind.JsonNode;
import io.ballast.common.BallastException;
import io.ballast.common.ErrorCode;
import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.apache.ratis.RaftConfigKeys;
import org.apache.ratis.client.RaftClient;
import org.apache.ratis.client.RaftClientConfigKeys;
import org.apache.ratis.conf.RaftProperties;
import org.apache.ratis.grpc.GrpcConfigKeys;
import org.apache.ratis.proto.RaftProtos.RaftPeerRole;
import org.apache.ratis.protocol.ClientId;
import org.apache.ratis.protocol.Message;
import org.apache.ratis.protocol.RaftClientRequest;
import org.apache.ratis.protocol.RaftClientReply;
import org.apache.ratis.protocol.RaftGroup;
import org.apache.ratis.protocol.RaftGroupId;
import org.apache.ratis.protocol.RaftPeer;
import org.apache.ratis.protocol.RaftPeerId;
import org.apache.ratis.protocol.exceptions.LeaderNotReadyException;
import org.apache.ratis.protocol.exceptions.ServerNotReadyException;
import org.apache.ratis.retry.RetryPolicies;
import org.apache.ratis.rpc.SupportedRpcType;
import org.apache.ratis.server.DivisionInfo;
import org.apache.ratis.server.RaftServer;
import org.apache.ratis.server.RaftServerConfigKeys;
import org.apache.ratis.server.storage.RaftStorage;
import org.apache.ratis.util.TimeDuration;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * This node's Ratis server (gRPC transport) and a client for writes and linearizable reads. Writes
 * go to the leader wherever the caller is (the Ratis client finds it and follows NotLeader
 * redirects). Reads: {@link #barrier()} asks the leader for a linearizable read (ReadIndex, or the
 * leader lease while it holds), which answers the leader's applied index; the caller then waits
 * until this node applied that index, after which the local state is current.
 *
 * <p>Fault seam for tests: {@link #isolate()} closes the Raft server and blocks this node's client,
 * so the node neither sends nor receives Raft traffic; {@link #heal()} restarts the server on the
 * same storage.
 */
public final class RaftNode implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(RaftNode.class);

    private final String nodeId;
    private final String raftAddress;
    private final Path storageDir;
    private final RaftGroupId groupId;
    private final BallastStateMachine sm;
    private final ClusterTimings timings;
    /** Seals this node's writes as a member's (the leader's state machine checks the seal). */
    private final CommandSeal seal;
    private volatile RaftServer server;
    private final io.ballast.security.NodeTls tls;
    private volatile ClientHandle client;
    private volatile boolean closed;
    private volatile List<RaftPeer> knownPeers;
    private volatile boolean isolated;
    /** Fails requests fast when a majority of voters is unreachable (see {@link #quorum()}). */
    private final QuorumWatch quorumWatch;
    private volatile long serverStartedAtMs = System.currentTimeMillis();
    /** Times Ratis closed this node's division on its own and it was started again (see {@link #watchDivision}). */
    private final java.util.concurrent.atomic.AtomicInteger divisionRestarts = new java.util.concurrent.atomic.AtomicInteger();
    /** After such a close the next start waits a full election timeout, so the leader's append comes first. */
    private volatile boolean patientFirstElection;
    private volatile Thread divisionWatchdog;

    public RaftNode(String nodeId, String raftAddress, Path storageDir, String token, BallastStateMachine sm,
            ClusterTimings timings) {
        this(nodeId, raftAddress, storageDir, token, sm, timings, null);
    }

    /** @param tls mutual TLS for the Raft port (server, peers and clients); null: plaintext (--insecure) */
    public RaftNode(String nodeId, String raftAddress, Path storageDir, String token, BallastStateMachine sm,
            ClusterTimings timings, io.ballast.security.NodeTls tls) {
        this.tls = tls;
        this.nodeId = nodeId;
        this.raftAddress = raftAddress;
        this.storageDir = storageDir;
        this.groupId = groupIdOf(token);
        this.sm = sm;
        this.timings = timings;
        this.seal = CommandSeal.forToken(token);
        sm.admitWritesSealedWith(seal);
        this.quorumWatch = new QuorumWatch(nodeId, Math.max(4 * timings.electionMinMs(), 1500), System::currentTimeMillis);
    }

    /**
     * A member that runs no Raft server of its own, only this class's client: sealed writes go through the
     * Raft client to the leader and {@link #sendLease} heartbeats to it, exactly as from a full node. The
     * fleet harness (simulated members, src/test io.ballast.testing.Fleet) uses it; such a node has no copy
     * of the metadata, so callers submit with {@code awaitLocalApply} false.
     */
    public static RaftNode clientOnly(String nodeId, String token, ClusterTimings timings, List<RaftPeer> peers)
            throws IOException {
        RaftNode n = new RaftNode(nodeId, "127.0.0.1:0", Path.of("/nonexistent"), token, new BallastStateMachine(), timings);
        n.setClientPeers(peers);
        return n;
    }

    /** The Raft group of a cluster follows from its token: a node with another token is in another group. */
    public static RaftGroupId groupIdOf(String token) {
        return RaftGroupId.valueOf(UUID.nameUUIDFromBytes(("ballast-raft-group:" + token).getBytes(StandardCharsets.UTF_8)));
    }

    public RaftPeer self() {
        return peer(nodeId, raftAddress, RaftPeerRole.FOLLOWER);
    }

    static RaftPeer peer(String id, String address, RaftPeerRole role) {
        return RaftPeer.newBuilder().setId(id).setAddress(address).setStartupRole(role).build();
    }

    public BallastStateMachine stateMachine() {
        return sm;
    }

    public String nodeId() {
        return nodeId;
    }

    private boolean hasStorage() {
        File[] groups = storageDir.toFile().listFiles();
        return groups != null && groups.length > 0;
    }

    /**
     * Starts the server. {@code peers} is the initial configuration: just this node to bootstrap a new
     * cluster, empty to join (the server waits for the leader to add it), ignored on restart (the
     * configuration comes from the log).
     */
    public void start(List<RaftPeer> peers, List<RaftPeer> clientPeers) throws IOException {
        io.ballast.common.OwnerOnly.createDirectories(storageDir);
        boolean recover = hasStorage();
        RaftGroup group = RaftGroup.valueOf(groupId, recover ? List.of() : peers);
        server = RaftServer.newBuilder()
                .setServerId(RaftPeerId.valueOf(nodeId))
                .setGroup(group)
                .setProperties(properties())
                .setParameters(parameters())
                .setStateMachine(sm)
                .setOption(recover ? RaftStorage.StartupOption.RECOVER : RaftStorage.StartupOption.FORMAT)
                .build();
        server.start();
        serverStartedAtMs = System.currentTimeMillis();
        List<RaftPeer> cp = new ArrayList<>(clientPeers);
        if (recover) {
            cp.addAll(currentPeers());
        }
        if (cp.stream().noneMatch(p -> p.getId().toString().equals(nodeId))) {
            cp.add(self());
        }
        setClientPeers(cp);
        log.atInfo().addKeyValue("raft", raftAddress).addKeyValue("group", groupId.toString())
                .addKeyValue("recover", recover).log("Raft server started");
        if (divisionWatchdog == null) {
            divisionWatchdog = Thread.ofVirtual().name("ballast-raft-watchdog-" + nodeId).start(this::watchDivision);
        }
    }

    /**
     * Rebuilds the client for a new set of peers (after a membership change, a join, a heal). The old
     * client is closed only after the calls still using it are done: closing a Ratis client under a
     * running call made that call fail with an NPE inside Ratis ("proxy" is null: the client's
     * PeerProxyMap hands out a proxy that its close just set to null).
     */
    public synchronized void setClientPeers(List<RaftPeer> peers) throws IOException {
        List<RaftPeer> distinct = new ArrayList<>();
        for (RaftPeer p : peers) {
            if (distinct.stream().noneMatch(d -> d.getId().equals(p.getId()))) {
                distinct.add(p);
            }
        }
        ClientHandle old = client;
        knownPeers = List.copyOf(distinct);
        client = new ClientHandle(newClient(distinct, CLIENT_TRY_TIMEOUT_MS));
        if (old != null) {
            old.release(); // the owner's reference: closes now, or when its last running call ends
        }
    }

    /** A Raft client of the group over {@code peers}; one try waits at most {@code tryTimeoutMs}. */
    private RaftClient newClient(List<RaftPeer> peers, long tryTimeoutMs) {
        RaftProperties p = properties();
        RaftClientConfigKeys.Rpc.setRequestTimeout(p, TimeDuration.valueOf(tryTimeoutMs, TimeUnit.MILLISECONDS));
        return RaftClient.newBuilder()
                .setProperties(p)
                .setParameters(parameters())
                .setRaftGroup(RaftGroup.valueOf(groupId, peers))
                // short sleeps between tries: while a new leader is elected (a failover) every try before it
                // is ready fails fast, and a 100 ms sleep added up to a tenth of a second to the takeover
                .setRetryPolicy(RetryPolicies.retryUpToMaximumCountWithFixedSleep(
                        (int) Math.max(10, timings.requestTimeoutMs() / CLIENT_RETRY_SLEEP_MS),
                        TimeDuration.valueOf(CLIENT_RETRY_SLEEP_MS, TimeUnit.MILLISECONDS)))
                .build();
    }

    /**
     * A Raft client and how many references it has: one for being the current client, one per running
     * call. It is closed when the count drops to zero, so a replaced client is never closed under a call.
     */
    private static final class ClientHandle {
        final RaftClient raft;
        private final java.util.concurrent.atomic.AtomicInteger refs = new java.util.concurrent.atomic.AtomicInteger(1);

        ClientHandle(RaftClient raft) {
            this.raft = raft;
        }

        /** False once the client is closed (it was replaced and its last call ended). */
        boolean tryAcquire() {
            while (true) {
                int n = refs.get();
                if (n == 0) {
                    return false;
                }
                if (refs.compareAndSet(n, n + 1)) {
                    return true;
                }
            }
        }

        void release() {
            if (refs.decrementAndGet() == 0) {
                try {
                    raft.close();
                } catch (IOException | RuntimeException e) {
                    log.atDebug().log("closing a replaced Raft client: {}", e.toString());
                }
            }
        }
    }

    /**
     * Ratis' gRPC TLS for the server, its peer connections and clients: mutual, with the node's reloading
     * key manager (renewed certificates are used from the next handshake) and the cluster trust manager
     * (cluster CA, revocation). A peer without such a certificate fails the handshake before any request.
     */
    private org.apache.ratis.conf.Parameters parameters() {
        org.apache.ratis.conf.Parameters params = new org.apache.ratis.conf.Parameters();
        if (tls != null) {
            org.apache.ratis.grpc.GrpcTlsConfig conf = new org.apache.ratis.grpc.GrpcTlsConfig(tls.keys(), tls.trust(), true);
            GrpcConfigKeys.TLS.setConf(params, conf);
            GrpcConfigKeys.Server.setTlsConf(params, conf);
            GrpcConfigKeys.Client.setTlsConf(params, conf);
            GrpcConfigKeys.Admin.setTlsConf(params, conf);
        }
        return params;
    }

    private RaftProperties properties() {
        RaftProperties p = new RaftProperties();
        RaftConfigKeys.Rpc.setType(p, SupportedRpcType.GRPC);
        RaftServerConfigKeys.setStorageDir(p, List.of(storageDir.toFile()));
        int colon = raftAddress.lastIndexOf(':');
        GrpcConfigKeys.Server.setHost(p, raftAddress.substring(0, colon));
        GrpcConfigKeys.Server.setPort(p, Integer.parseInt(raftAddress.substring(colon + 1)));
        RaftServerConfigKeys.Rpc.setTimeoutMin(p, TimeDuration.valueOf(timings.electionMinMs(), TimeUnit.MILLISECONDS));
        RaftServerConfigKeys.Rpc.setTimeoutMax(p, TimeDuration.valueOf(timings.electionMinMs() * 2, TimeUnit.MILLISECONDS));
        // reads go to the leader, which answers after confirming its leadership (ReadIndex; lease when valid)
        // the first election need not wait a full timeout: a fresh or restarted node has no leader to hear from
        // (unless the leader just told this node it is not a voter: then it waits to hear the leader's append)
        long firstElectionMinMs = patientFirstElection ? timings.electionMinMs() : 50;
        RaftServerConfigKeys.Rpc.setFirstElectionTimeoutMin(p, TimeDuration.valueOf(firstElectionMinMs, TimeUnit.MILLISECONDS));
        RaftServerConfigKeys.Rpc.setFirstElectionTimeoutMax(p, TimeDuration.valueOf(firstElectionMinMs * 3, TimeUnit.MILLISECONDS));
        RaftServerConfigKeys.Read.setOption(p, RaftServerConfigKeys.Read.Option.LINEARIZABLE);
        RaftServerConfigKeys.Read.setLeaderLeaseEnabled(p, true);
        RaftServerConfigKeys.Snapshot.setAutoTriggerEnabled(p, true);
        RaftServerConfigKeys.Snapshot.setAutoTriggerThreshold(p, timings.snapshotEveryEntries());
        return p;
    }

    public Collection<RaftPeer> currentPeers() {
        try {
            var conf = server.getDivision(groupId).getRaftConf();
            List<RaftPeer> all = new ArrayList<>(conf.getCurrentPeers(RaftPeerRole.FOLLOWER));
            all.addAll(conf.getCurrentPeers(RaftPeerRole.LISTENER));
            return all;
        } catch (IOException | RuntimeException e) {
            return knownPeers == null ? List.of() : knownPeers;
        }
    }

    public List<String> currentVoters() {
        try {
            return server.getDivision(groupId).getRaftConf().getCurrentPeers(RaftPeerRole.FOLLOWER).stream()
                    .map(p -> p.getId().toString()).sorted().toList();
        } catch (IOException | RuntimeException e) {
            return List.of();
        }
    }

    public Optional<DivisionInfo> info() {
        try {
            RaftServer s = server;
            return s == null || isolated ? Optional.empty() : Optional.of(s.getDivision(groupId).getInfo());
        } catch (IOException | RuntimeException e) {
            return Optional.empty();
        }
    }

    /** How often a request waiting for the leader checks whether the quorum is lost. */
    private static final long QUORUM_CHECK_MS = 250;

    /**
     * What this node sees of its quorum: fine while it has a working leader; otherwise which voters
     * accept a connection on their Raft port. Not meaningful on an isolated or stopped node.
     */
    public QuorumWatch.View quorum() {
        RaftServer s = server;
        java.util.Map<String, String> voters = new java.util.TreeMap<>();
        try {
            if (s == null || isolated) {
                return new QuorumWatch.View(false, 1, List.of(), List.of(nodeId), 0);
            }
            var division = s.getDivision(groupId);
            for (RaftPeer p : division.getRaftConf().getCurrentPeers(RaftPeerRole.FOLLOWER)) {
                voters.put(p.getId().toString(), p.getAddress());
            }
            if (voters.isEmpty()) {
                return new QuorumWatch.View(true, 0, List.of(), List.of(), 0); // joining: not a voter yet
            }
            return quorumWatch.view(division.getInfo().getRoleInfoProto(), voters,
                    System.currentTimeMillis() - serverStartedAtMs);
        } catch (IOException | RuntimeException e) {
            return new QuorumWatch.View(true, voters.size(), List.copyOf(voters.keySet()), List.of(), 0);
        }
    }

    /** Throws UNAVAILABLE with the quorum's state when a majority of voters is unreachable. */
    private void failIfQuorumLost(Runnable beforeThrowing) {
        if (isolated || server == null) {
            return; // reported by the callers' own checks, in their words
        }
        QuorumWatch.View q = quorum();
        if (!q.ok()) {
            beforeThrowing.run();
            throw new BallastException(ErrorCode.UNAVAILABLE, q.reason());
        }
    }

    public boolean isLeader() {
        return info().map(DivisionInfo::isLeaderReady).orElse(false);
    }

    public Optional<String> leaderId() {
        return info().map(DivisionInfo::getLeaderId).map(RaftPeerId::toString);
    }

    public long term() {
        return info().map(DivisionInfo::getCurrentTerm).orElse(0L);
    }

    public String role() {
        return info().map(i -> i.getCurrentRole().name().toLowerCase()).orElse(isolated ? "isolated" : "none");
    }

    /**
     * Commits a command through the leader; returns the result or throws the command's error. Answers
     * once this node's copy of the metadata includes the write (read-your-writes on this node).
     */
    public JsonNode submit(Command command) {
        return submit(command, true);
    }

    /**
     * {@code awaitLocalApply} false: answers as soon as the leader committed and applied the command,
     * without waiting for this node (a follower) to learn the commit and apply it too (up to one more
     * append from the leader). For callers that build their answer from the returned result: this
     * node's copy may not show the write yet, and every read here starts with {@link #barrier()},
     * which waits for it.
     */
    public JsonNode submit(Command command, boolean awaitLocalApply) {
        failIfQuorumLost(() -> {});
        CreateTrace.mark("quorum_check");
        byte[] bytes;
        try {
            bytes = seal.seal(ClusterState.JSON.writeValueAsBytes(command));
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
        Message msg = Message.valueOf(org.apache.ratis.thirdparty.com.google.protobuf.ByteString.copyFrom(bytes));
        CreateTrace.mark("encode_seal");
        RaftClientReply reply = isLeader() ? submitToOwnServer(msg) : null;
        if (reply == null) {
            reply = submitThroughClient(msg);
            CreateTrace.mark("raft_through_client"); // a follower's write, sent to the leader over gRPC
        } else {
            CreateTrace.mark("raft_on_leader");
        }
        JsonNode r;
        try {
            r = ClusterState.JSON.readTree(reply.getMessage().getContent().toByteArray());
        } catch (IOException e) {
            throw new BallastException(ErrorCode.INTERNAL, "unreadable reply from the state machine: " + e);
        }
        if (awaitLocalApply) {
            // read-your-writes on this node: its copy of the metadata includes the write before we answer
            sm.awaitApplied(reply.getLogIndex(), timings.requestTimeoutMs());
            CreateTrace.mark("await_local_apply");
        }
        if (!r.path("ok").asBoolean()) {
            throw new BallastException(ErrorCode.valueOf(r.path("code").asText("INTERNAL")), r.path("message").asText());
        }
        return r.path("result");
    }

    /** Through the Raft client: it finds the leader and follows redirects, retrying with the same call id. */
    private RaftClientReply submitThroughClient(Message msg) {
        return callThroughClient(msg, timings.requestTimeoutMs(), "write");
    }

    /** A write sent through the client to the leader. */
    private RaftClientReply callThroughClient(Message msg, long timeoutMs, String what) {
        ClientHandle c = acquireClient();
        CompletableFuture<RaftClientReply> call;
        try {
            call = CompletableFuture.supplyAsync(() -> {
                try {
                    return c.raft.io().send(msg);
                } catch (IOException e) {
                    throw new java.util.concurrent.CompletionException(e);
                } finally {
                    c.release(); // when the send ends, also after our wait below timed out
                }
            }, CALLS);
        } catch (RuntimeException e) {
            c.release();
            throw e;
        }
        return await(call, timeoutMs, what);
    }

    /**
     * On the leader, a write handed to this node's own Raft server in process: no gRPC round trip to
     * ourselves and fewer thread handoffs. Null when it was not submitted at all (the server is not
     * running or is closing), so the caller may send it through the client; a refusal as "not leader"
     * after submission is sent on with the same call id ({@link #resendToLeader}).
     */
    private RaftClientReply submitToOwnServer(Message msg) {
        RaftServer s = server;
        if (isolated || s == null) {
            return null;
        }
        RaftClientRequest req = RaftClientRequest.newBuilder()
                .setClientId(LOCAL_WRITES)
                .setServerId(RaftPeerId.valueOf(nodeId))
                .setGroupId(groupId)
                .setCallId(WRITE_CALLS.incrementAndGet())
                .setMessage(msg)
                .setType(RaftClientRequest.writeRequestType())
                .setTimeoutMs(timings.requestTimeoutMs())
                .build();
        CompletableFuture<RaftClientReply> f;
        try {
            f = s.submitClientRequestAsync(req);
        } catch (IOException e) {
            return null; // not submitted at all (e.g. the server is closing)
        }
        RaftClientReply reply;
        try {
            reply = f.get(timings.requestTimeoutMs(), TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            throw new BallastException(ErrorCode.UNAVAILABLE, "metadata write timed out after " + timings.requestTimeoutMs()
                    + " ms: no quorum answered the leader " + nodeId + "; check `ballast status` and `ballast events`");
        } catch (ExecutionException e) {
            throw new BallastException(ErrorCode.UNAVAILABLE, "metadata write failed: " + e.getCause());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new BallastException(ErrorCode.UNAVAILABLE, "interrupted");
        }
        if (reply.isSuccess()) {
            return reply;
        }
        if (reply.getNotLeaderException() != null || reply.getException() instanceof LeaderNotReadyException) {
            return resendToLeader(req, reply);
        }
        throw new BallastException(ErrorCode.UNAVAILABLE, "metadata write failed: " + reply.getException());
    }

    /**
     * A write our own server answered "not leader" may still be in its log: a leader that steps down
     * answers its pending writes so, and the next leader commits them. It goes to the leader again with
     * the same client and call id: Ratis' retry cache, which every member fills as it applies entries,
     * then answers with the first outcome instead of applying the command twice (a create that had
     * succeeded answered "already exists"; MiniClusterTest reproduces it with leadership transfers).
     */
    private RaftClientReply resendToLeader(RaftClientRequest first, RaftClientReply refusal) {
        long deadline = System.nanoTime() + timings.requestTimeoutMs() * 1_000_000;
        RaftClientReply reply = refusal;
        while (true) {
            RaftPeerId target = null;
            if (reply != null && reply.getNotLeaderException() != null && reply.getNotLeaderException().getSuggestedLeader() != null) {
                target = reply.getNotLeaderException().getSuggestedLeader().getId();
            } else {
                target = info().map(DivisionInfo::getLeaderId).orElse(null);
            }
            String last = reply == null ? "no answer" : String.valueOf(reply.getException());
            if (System.nanoTime() + CLIENT_RETRY_SLEEP_MS * 1_000_000 >= deadline) {
                throw new BallastException(ErrorCode.UNAVAILABLE, "metadata write timed out after " + timings.requestTimeoutMs()
                        + " ms while the Raft leader changed (" + last + "); check `ballast status` and `ballast events`");
            }
            if (target == null || isolated) {
                sleepMs(CLIENT_RETRY_SLEEP_MS); // no leader known yet
                reply = null;
                continue;
            }
            RaftClientRequest again = RaftClientRequest.newBuilder()
                    .setClientId(first.getClientId())
                    .setServerId(target)
                    .setGroupId(groupId)
                    .setCallId(first.getCallId())
                    .setMessage(first.getMessage())
                    .setType(first.getType())
                    .setTimeoutMs(Math.max(1, (deadline - System.nanoTime()) / 1_000_000))
                    .build();
            try {
                RaftServer s = server;
                if (target.toString().equals(nodeId) && s != null) {
                    reply = s.submitClientRequestAsync(again).get(again.getTimeoutMs(), TimeUnit.MILLISECONDS);
                } else {
                    ClientHandle c = acquireClient();
                    try {
                        reply = c.raft.getClientRpc().sendRequest(again);
                    } finally {
                        c.release();
                    }
                }
            } catch (IOException | ExecutionException | TimeoutException | RuntimeException e) {
                reply = null; // e.g. the target just went away: ask again whom to send it to
                sleepMs(CLIENT_RETRY_SLEEP_MS);
                continue;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new BallastException(ErrorCode.UNAVAILABLE, "interrupted");
            }
            if (reply.isSuccess()) {
                return reply;
            }
            if (reply.getNotLeaderException() == null && !(reply.getException() instanceof LeaderNotReadyException)) {
                throw new BallastException(ErrorCode.UNAVAILABLE, "metadata write failed: " + reply.getException());
            }
            sleepMs(CLIENT_RETRY_SLEEP_MS);
        }
    }

    private static final ClientId LOCAL_WRITES = ClientId.randomId();
    private static final java.util.concurrent.atomic.AtomicLong WRITE_CALLS = new java.util.concurrent.atomic.AtomicLong();

    /**
     * Waits until this node's state machine reflects every write committed before the call
     * (linearizable read, Raft ReadIndex). The read request goes to this node's own Raft server in
     * process (no RPC to ourselves): on the leader Ratis answers from its lease (or one heartbeat
     * round, shared by all reads waiting at that moment) with its commit index; on a follower Ratis
     * asks the leader for that index (one RPC) and waits until the local state machine applied it.
     * Either way {@link BallastStateMachine#query} runs after that, so the local state is current
     * when this returns. Retries (no leader yet, leader not ready, ...) until the request timeout.
     */
    public void barrier() {
        long deadline = System.nanoTime() + timings.requestTimeoutMs() * 1_000_000;
        String last = "no answer";
        boolean triedLeader = false;
        while (true) {
            RaftServer s = server;
            if (isolated) {
                throw new BallastException(ErrorCode.UNAVAILABLE, "node " + nodeId + " is cut off from the cluster (isolated)");
            }
            if (s == null) {
                throw new BallastException(ErrorCode.UNAVAILABLE, "node " + nodeId + " has not started its Raft server yet");
            }
            failIfQuorumLost(() -> {});
            if (!triedLeader && followerHearingTheLeader(s)) {
                // through the leader, for its last applied command (BallastStateMachine.query): Ratis'
                // own follower read waits for the leader's commit index, held up by its metadata entries.
                // Bounded by an election timeout: a leader that just died would hold the client for its
                // whole request timeout, while Ratis' read below retries until a new leader is elected.
                triedLeader = true;
                long attemptDeadline = Math.min(deadline, System.nanoTime() + timings.electionMinMs() * 1_000_000);
                try {
                    barrierThroughLeader(attemptDeadline);
                    return;
                } catch (BallastException e) {
                    last = "through the leader: " + e.getMessage();
                }
            }
            long leftMs = Math.max(1, (deadline - System.nanoTime()) / 1_000_000);
            RaftClientRequest req = RaftClientRequest.newBuilder()
                    .setClientId(LOCAL_READS)
                    .setServerId(RaftPeerId.valueOf(nodeId))
                    .setGroupId(groupId)
                    .setCallId(READ_CALLS.incrementAndGet())
                    .setMessage(BARRIER)
                    .setType(RaftClientRequest.readRequestType())
                    .setTimeoutMs(leftMs)
                    .build();
            try {
                CompletableFuture<RaftClientReply> read = s.submitClientRequestAsync(req);
                RaftClientReply reply = null;
                long readDeadline = System.nanoTime() + leftMs * 1_000_000;
                while (reply == null) {
                    long sliceMs = Math.min(QUORUM_CHECK_MS, Math.max(1, (readDeadline - System.nanoTime()) / 1_000_000));
                    try {
                        reply = read.get(sliceMs, TimeUnit.MILLISECONDS);
                    } catch (TimeoutException e) {
                        if (System.nanoTime() >= readDeadline) {
                            throw e;
                        }
                        failIfQuorumLost(() -> {}); // a lost quorum is said at once, not after the timeout
                    }
                }
                if (reply.isSuccess()) {
                    return;
                }
                if (servesNoReads(reply.getException())) {
                    barrierThroughLeader(deadline);
                    return;
                }
                last = String.valueOf(reply.getException());
            } catch (TimeoutException e) {
                last = "timed out";
            } catch (ExecutionException e) {
                if (servesNoReads(e.getCause())) {
                    barrierThroughLeader(deadline);
                    return;
                }
                last = String.valueOf(e.getCause());
            } catch (IOException | RuntimeException e) {
                last = e.toString();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new BallastException(ErrorCode.UNAVAILABLE, "interrupted");
            }
            if (System.nanoTime() + READ_RETRY_MS * 1_000_000 >= deadline) {
                throw new BallastException(ErrorCode.UNAVAILABLE, "metadata read timed out after " + timings.requestTimeoutMs()
                        + " ms: no Raft leader with a quorum is reachable from " + nodeId + " (" + last
                        + "); check `ballast status` and `ballast events`");
            }
            sleepMs(READ_RETRY_MS); // e.g. no leader elected yet, or the new leader has not committed in its term
        }
    }

    /**
     * A voting follower whose server runs, whose membership this node's metadata already shows, and
     * which heard from its leader within half an election timeout (one heartbeat interval).
     */
    private boolean followerHearingTheLeader(RaftServer s) {
        try {
            DivisionInfo info = s.getDivision(groupId).getInfo();
            if (!info.isFollower() || info.getLifeCycleState() != org.apache.ratis.util.LifeCycle.State.RUNNING
                    || sm.state().node(nodeId).isEmpty()) {
                return false;
            }
            var follower = info.getRoleInfoProto().getFollowerInfo();
            return follower.hasLeaderInfo() && follower.getLeaderInfo().getLastRpcElapsedTimeMs() < timings.electionMinMs() / 2;
        } catch (IOException | RuntimeException e) {
            return false;
        }
    }

    /**
     * The barrier of a follower hearing its leader, and of a member whose server Ratis left in STARTING
     * (see {@link #servesNoReads}): the leader answers a linearizable read of its applied index and this
     * node waits until its own state machine applied that far. Every write committed before the call is
     * at or below that index, so the local state then reflects it.
     */
    private void barrierThroughLeader(long deadlineNs) {
        long index = leaderIndex(deadlineNs);
        long leftMs = Math.max(1, (deadlineNs - System.nanoTime()) / 1_000_000);
        if (!sm.awaitApplied(index, leftMs)) {
            throw new BallastException(ErrorCode.UNAVAILABLE, "metadata read timed out after " + timings.requestTimeoutMs()
                    + " ms: " + nodeId + " did not catch up with the leader's log index " + index
                    + "; check `ballast status` and `ballast events`");
        }
    }

    private final Object indexCallLock = new Object();
    /** The next leader-index call, which reads join until it is sent; null when none has joined. */
    private CompletableFuture<Long> nextIndexCall;
    private boolean indexCallInFlight;

    /**
     * The leader's applied index, read after this call began (the follower's read barrier). Concurrent
     * reads share round trips: a read joins the next call, one not yet sent, so its answer is still an
     * index the leader read after the read began; while a call is in flight, the reads that arrive wait
     * for the one after it. One call per round trip instead of one per read: under four concurrent
     * readers each follower read cost the leader about 10 thread wake-ups (docs/perf/control-plane.md).
     */
    private long leaderIndex(long deadlineNs) {
        CompletableFuture<Long> joined;
        boolean send;
        synchronized (indexCallLock) {
            if (nextIndexCall == null) {
                nextIndexCall = new CompletableFuture<>();
            }
            joined = nextIndexCall;
            send = !indexCallInFlight;
            if (send) {
                indexCallInFlight = true;
                nextIndexCall = null;
            }
        }
        if (send) {
            sendIndexCall(joined);
        }
        long leftMs = Math.max(1, (deadlineNs - System.nanoTime()) / 1_000_000);
        try {
            return joined.get(leftMs, TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            throw new BallastException(ErrorCode.UNAVAILABLE, "metadata read timed out after " + leftMs
                    + " ms: no Raft leader with a quorum is reachable from " + nodeId + "; check `ballast status` and `ballast events`");
        } catch (ExecutionException e) {
            if (e.getCause() instanceof BallastException b) {
                throw b;
            }
            throw new BallastException(ErrorCode.UNAVAILABLE, "metadata read failed: " + e.getCause());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new BallastException(ErrorCode.UNAVAILABLE, "interrupted");
        }
    }

    /**
     * One leader-index call for every read that joined it: Ratis' async read-only call (no thread of
     * ours parked in the client), given up after an election timeout so that a dead leader does not
     * hold the reads queued behind it; then the next call, if reads joined meanwhile.
     */
    private void sendIndexCall(CompletableFuture<Long> joined) {
        CompletableFuture<RaftClientReply> call;
        try {
            ClientHandle c = acquireClient();
            try {
                call = c.raft.async().sendReadOnly(BARRIER);
            } catch (RuntimeException e) {
                c.release();
                throw e;
            }
            call.whenComplete((reply, error) -> c.release());
            call.orTimeout(timings.electionMinMs(), TimeUnit.MILLISECONDS);
        } catch (RuntimeException e) {
            call = CompletableFuture.failedFuture(e);
        }
        call.whenComplete((reply, error) -> {
            if (error != null) {
                joined.completeExceptionally(error instanceof BallastException ? error
                        : new BallastException(ErrorCode.UNAVAILABLE, "metadata read failed: " + error));
            } else if (!reply.isSuccess()) {
                joined.completeExceptionally(new BallastException(ErrorCode.UNAVAILABLE, "metadata read failed: " + reply.getException()));
            } else {
                String text = reply.getMessage().getContent().toStringUtf8().trim();
                try {
                    joined.complete(Long.parseLong(text));
                } catch (NumberFormatException e) {
                    joined.completeExceptionally(new BallastException(ErrorCode.INTERNAL, "the leader answered the read barrier with " + text));
                }
            }
            CompletableFuture<Long> next;
            synchronized (indexCallLock) {
                next = nextIndexCall;
                nextIndexCall = null;
                indexCallInFlight = next != null;
            }
            if (next != null) {
                sendIndexCall(next);
            }
        });
    }

    /**
     * Whether a read refused with {@code failure} means this server will never serve reads: it refused
     * as "not RUNNING" and this node's copy of the metadata lists it as a member, so it is one Ratis left
     * in STARTING for good (a node that joined as a listener, even after it was made a voter), not a node
     * still joining. A joining node is not listed until the leader brought it into the configuration
     * and registered it; it waits for that rather than asking the leader (doing so while it started
     * made its server hang in Ratis under load).
     */
    private boolean servesNoReads(Throwable failure) {
        return failure instanceof ServerNotReadyException && sm.state().node(nodeId).isPresent();
    }

    private static final long READ_RETRY_MS = 20;
    private static final long CLIENT_RETRY_SLEEP_MS = 25;
    /**
     * One try of the metadata client: a write sent to a leader that just died waits this long before
     * the client tries another server (Ratis' default of 3 s was most of a failover's attach when it
     * happened). A repeated write carries the same call id, so the leader's retry cache applies it once.
     */
    private static final long CLIENT_TRY_TIMEOUT_MS = 1_000;
    /**
     * One try of a reconfiguration: adding a server waits until it caught up, and Ratis keeps no retry
     * cache for reconfigurations (a repeated one is refused as in progress), so it gets a client of its own.
     */
    private static final long RECONFIGURATION_TRY_TIMEOUT_MS = 3_000;
    private static final ClientId LOCAL_READS = ClientId.randomId();
    private static final java.util.concurrent.atomic.AtomicLong READ_CALLS = new java.util.concurrent.atomic.AtomicLong();
    private static final Message BARRIER = Message.valueOf("barrier");
    private static final java.util.concurrent.ExecutorService CALLS =
            java.util.concurrent.Executors.newThreadPerTaskExecutor(Thread.ofVirtual().name("ballast-raft-call-", 0).factory());

    /**
     * A heartbeat that is not a log entry: a sealed read-only request to the leader, whose state machine
     * hands it to the failure detector ({@link BallastStateMachine#onLease}). On the leader itself, no
     * round trip. Throws UNAVAILABLE when no leader answers within an election timeout.
     */
    public void sendLease() {
        byte[] body = ("lease:" + nodeId).getBytes(StandardCharsets.UTF_8);
        Message msg = Message.valueOf(org.apache.ratis.thirdparty.com.google.protobuf.ByteString.copyFrom(seal.seal(body)));
        if (isLeader()) {
            sm.query(msg).join();
            return;
        }
        ClientHandle c = acquireClient();
        CompletableFuture<RaftClientReply> call;
        try {
            // non-linearizable: served by the leader only (a follower answers NotLeader and the client
            // follows it), with no ReadIndex round; a linearizable read could be served by a follower,
            // whose detector is not the one that judges
            call = c.raft.async().sendReadOnlyNonLinearizable(msg);
        } catch (RuntimeException e) {
            c.release();
            throw new BallastException(ErrorCode.UNAVAILABLE, "heartbeat not sent: " + e.getMessage());
        }
        call.whenComplete((r, e) -> c.release());
        try {
            RaftClientReply r = call.get(Math.max(timings.electionMinMs() * 2, timings.heartbeatMs()), TimeUnit.MILLISECONDS);
            if (!r.isSuccess()) {
                throw new BallastException(ErrorCode.UNAVAILABLE, "heartbeat not taken: " + r.getException());
            }
        } catch (TimeoutException | ExecutionException e) {
            renewClientAfterFailedLease(c);
            throw new BallastException(ErrorCode.UNAVAILABLE, "heartbeat not taken: " + e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new BallastException(ErrorCode.UNAVAILABLE, "interrupted");
        }
    }

    /**
     * A lease that failed leaves the Ratis client's ordered window held on it: later leases wait behind it
     * while Ratis retries it, and after a leader change a member's client was seen retrying one lease
     * against closed proxies for seconds ("Failed* ... AlreadyClosedException", FleetHarnessTest), so its
     * leases stopped reaching the new leader and it was judged suspect, then down. Leases are independent
     * and a late one is worthless: a fresh client (new window and connections) carries the next one.
     * Calls still running on the old client finish on it ({@link #setClientPeers}).
     */
    private void renewClientAfterFailedLease(ClientHandle failed) {
        synchronized (this) {
            if (client != failed || closed || isolated || knownPeers == null) {
                return; // already renewed by another failed lease, or nothing to renew
            }
            try {
                setClientPeers(knownPeers);
            } catch (IOException | RuntimeException e) {
                log.atDebug().log("renewing the Raft client after a failed lease: {}", e.toString());
            }
        }
    }

    /** This node's Raft commit index (0 before the server runs). */
    public long commitIndex() {
        try {
            RaftServer s = server;
            return s == null ? 0 : s.getDivision(groupId).getRaftLog().getLastCommittedIndex();
        } catch (IOException | RuntimeException e) {
            return 0;
        }
    }

    /** Membership change through Ratis reconfiguration (joint consensus). */
    public void setConfiguration(List<RaftPeer> voters, List<RaftPeer> listeners) {
        acquireClient().release(); // the same refusals as any call: isolated, closing, not started
        try (RaftClient admin = newClient(knownPeers, RECONFIGURATION_TRY_TIMEOUT_MS)) {
            RaftClientReply r = admin.admin().setConfiguration(voters, listeners);
            if (!r.isSuccess()) {
                throw new BallastException(ErrorCode.UNAVAILABLE, "Raft reconfiguration failed: " + r.getException());
            }
            List<RaftPeer> all = new ArrayList<>(voters);
            all.addAll(listeners);
            setClientPeers(all);
        } catch (IOException e) {
            throw new BallastException(ErrorCode.UNAVAILABLE, "Raft reconfiguration failed: " + e.getMessage());
        }
    }

    /** The current client, with a reference the caller must {@link ClientHandle#release() release}. */
    private ClientHandle acquireClient() {
        while (true) {
            if (isolated) {
                throw new BallastException(ErrorCode.UNAVAILABLE, "node " + nodeId + " is cut off from the cluster (isolated)");
            }
            if (closed) {
                throw new BallastException(ErrorCode.UNAVAILABLE, "node " + nodeId + " is shutting down");
            }
            ClientHandle c = client;
            if (c == null) {
                throw new BallastException(ErrorCode.UNAVAILABLE, "node " + nodeId + " has not started its Raft client yet");
            }
            if (c.tryAcquire()) {
                return c;
            }
            Thread.onSpinWait(); // replaced between our read and the acquire: the next read sees the new one
        }
    }

    private RaftClientReply await(CompletableFuture<RaftClientReply> f, long timeoutMs, String what) {
        try {
            long deadline = System.nanoTime() + timeoutMs * 1_000_000;
            RaftClientReply r = null;
            while (r == null) {
                long leftMs = Math.max(1, (deadline - System.nanoTime()) / 1_000_000);
                try {
                    r = f.get(Math.min(leftMs, QUORUM_CHECK_MS), TimeUnit.MILLISECONDS);
                } catch (TimeoutException e) {
                    if (leftMs <= QUORUM_CHECK_MS) {
                        throw e;
                    }
                    // the outcome stays unknown, as after a timeout: the write may still commit later
                    failIfQuorumLost(() -> f.cancel(true));
                }
            }
            if (!r.isSuccess()) {
                throw new BallastException(ErrorCode.UNAVAILABLE, "metadata " + what + " failed: " + r.getException());
            }
            return r;
        } catch (TimeoutException e) {
            f.cancel(true);
            throw new BallastException(ErrorCode.UNAVAILABLE, "metadata " + what + " timed out after " + timeoutMs
                    + " ms: no Raft leader with a quorum is reachable from " + nodeId + "; check `ballast status` and `ballast events`");
        } catch (ExecutionException e) {
            throw new BallastException(ErrorCode.UNAVAILABLE, "metadata " + what + " failed: " + e.getCause().getMessage());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new BallastException(ErrorCode.UNAVAILABLE, "interrupted");
        }
    }

    /** Test seam: no Raft traffic in or out of this node until {@link #heal()}. */
    public synchronized void isolate() throws IOException {
        isolated = true;
        if (server != null) {
            server.close();
        }
    }

    public synchronized void heal() throws IOException {
        isolated = false;
        start(List.of(), knownPeers == null ? List.of() : knownPeers);
    }

    public boolean isolated() {
        return isolated;
    }

    /**
     * Ratis closes a division by itself when its election finds it is not a voter: the leader answers
     * the pre-vote of a node missing from its voters with "shut down", and a node that joined empty and
     * was made a listener later still runs a follower's election timer (Ratis starts the listener role
     * only from a stored configuration) and closes itself when that timer fires. Both happen to members in
     * good standing: a voter replaced while it was down and restarted, a listener after a leader change.
     * The node is still a member, so its Raft server is started again from its log, whose configuration
     * then lists it as a listener, with a patient first election so the leader's append comes first.
     * A listener seen with a follower's role is restarted the same way before its timer can fire.
     * Checked every {@code heartbeatMs}; restarts whose division closes again within 30 s back off up to
     * 64 times that (a node removed from the cluster is refused by the leader every time; harmless).
     */
    private void watchDivision() {
        long checkEveryMs = Math.max(100, timings.heartbeatMs());
        int closedInARow = 0; // restarts whose division did not stay up: back off (a removed node, say)
        int listenerSeenAsFollower = 0;
        long lastRestartNs = 0;
        while (!closed) {
            try {
                Thread.sleep(checkEveryMs << Math.min(closedInARow, 6));
                synchronized (this) {
                    if (closed || isolated || server == null) {
                        continue;
                    }
                    String why = divisionAlive() ? null : "Ratis closed this node's Raft division (its election found it is not"
                            + " a voter in the leader's configuration)";
                    if (why == null && listenerRunningAsFollower()) {
                        listenerSeenAsFollower++;
                        // twice in a row: not a configuration change caught half-way
                        why = listenerSeenAsFollower >= 2 ? "this node is a Raft listener but its server runs a follower's"
                                + " election timer (it joined before it was made a listener)" : null;
                    } else {
                        listenerSeenAsFollower = 0;
                    }
                    if (why == null) {
                        if (closedInARow > 0 && System.nanoTime() - lastRestartNs > 30_000_000_000L) {
                            closedInARow = 0;
                        }
                        continue;
                    }
                    listenerSeenAsFollower = 0;
                    int attempt = divisionRestarts.incrementAndGet();
                    log.atWarn().addKeyValue("attempt", attempt).log("{}; starting the Raft server again", why);
                    patientFirstElection = true;
                    closedInARow++;
                    lastRestartNs = System.nanoTime();
                    server.close();
                    start(List.of(), knownPeers == null ? List.of() : knownPeers);
                }
            } catch (InterruptedException e) {
                return;
            } catch (IOException | RuntimeException e) {
                log.atError().setCause(e).log("the Raft server could not be started again; retrying");
            }
        }
    }

    /** The stable configuration lists this node as a listener only, yet its server has a follower's role. */
    private boolean listenerRunningAsFollower() {
        try {
            var division = server.getDivision(groupId);
            var role = division.getInfo().getCurrentRole();
            if (role != RaftPeerRole.FOLLOWER && role != RaftPeerRole.CANDIDATE) {
                return false;
            }
            var conf = division.getRaftConf();
            boolean stable = conf.getPreviousPeers(RaftPeerRole.FOLLOWER).isEmpty() && conf.getPreviousPeers(RaftPeerRole.LISTENER).isEmpty();
            RaftPeerId me = RaftPeerId.valueOf(nodeId);
            return stable && conf.getPeer(me, RaftPeerRole.LISTENER) != null && conf.getPeer(me, RaftPeerRole.FOLLOWER) == null;
        } catch (IOException | RuntimeException e) {
            return false;
        }
    }

    private boolean divisionAlive() {
        try {
            return server.getDivision(groupId).getInfo().isAlive();
        } catch (IOException | RuntimeException e) {
            return false; // the division is gone from the server
        }
    }

    /** Test seam: closes the division the way Ratis does after a lost election (the server stays up). */
    public void closeDivision() throws IOException {
        server.getDivision(groupId).close();
    }

    /** Test seam: asks the leader to hand leadership to {@code nodeId} (Ratis' leadership transfer). */
    public void transferLeadership(String toNodeId, long timeoutMs) {
        ClientHandle c = acquireClient();
        try {
            c.raft.admin().transferLeadership(RaftPeerId.valueOf(toNodeId), timeoutMs);
        } catch (IOException e) {
            throw new BallastException(ErrorCode.UNAVAILABLE, "leadership transfer failed: " + e.getMessage());
        } finally {
            c.release();
        }
    }

    /** How often Ratis closed this node's division by itself and it was started again. */
    public int divisionRestarts() {
        return divisionRestarts.get();
    }

    @Override
    public synchronized void close() throws IOException {
        boolean wasClosed = closed;
        closed = true;
        if (divisionWatchdog != null) {
            divisionWatchdog.interrupt();
        }
        if (!wasClosed && client != null) {
            client.release(); // closes once running calls end (they fail fast: the server below closes)
        }
        if (server != null) {
            server.close();
        }
    }
}
