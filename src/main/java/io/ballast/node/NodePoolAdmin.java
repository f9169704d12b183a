package io.ballast.node;

import com.fasterxml.jackson.databind.JsonNode;
import io.ballast.cluster.ClusterMember;
import io.ballast.cluster.Command;
import io.ballast.cluster.ReplicaRecord;
import io.ballast.cluster.VolumeRecord;
import io.ballast.common.BallastException;
import io.ballast.storage.FileStoragePool;
import io.ballast.storage.PoolDirectory;
import io.ballast.storage.PoolSpace;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Pool directories added to and removed from a running node ({@code ballast node pool add|remove},
 * docs/node.md "Pools"). A removal first moves the pool's replicas to other nodes with the drain
 * machinery (a {@link Command.DrainReplicas}: a replacement elsewhere, the replica here retired once
 * the replacement is in sync and then deleted by the reconciler), then lets go of the directory. The
 * removal is recorded in DATA/pools.json, so a restart goes on with it.
 */
final class NodePoolAdmin implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(NodePoolAdmin.class);
    /** How often a removal checks whether its pool is empty yet. */
    static final long CHECK_MS = 500;
    /** How often a removal asks again for replicas that could not be placed (space may have appeared). */
    static final long RETRY_MS = 10_000;

    private final Path dataDir;
    private final FileStoragePool pool;
    private final ClusterMember member;
    private final List<Thread> watchers = new ArrayList<>();
    private volatile boolean closed;

    NodePoolAdmin(Path dataDir, FileStoragePool pool, ClusterMember member) {
        this.dataDir = dataDir;
        this.pool = pool;
        this.member = member;
    }

    /** Opens a new pool directory on the running node and records it. */
    synchronized PoolSpace add(PoolDirectory dir) {
        PoolSpace added = pool.addDirectory(dir);
        record();
        return added;
    }

    /**
     * Starts removing a pool: no new replica goes there; its replicas move to other nodes; the directory
     * is let go once it holds none (its files stay on disk). Answers what moves where.
     */
    synchronized Map<String, Object> remove(String name) {
        pool.retireDirectory(name);
        record();
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("pool", name);
        List<String> held = pool.volumesIn(name);
        if (held.isEmpty()) {
            finish(name);
            out.put("removed", true);
            return out;
        }
        JsonNode drained = drain(name, held);
        out.put("removed", false);
        JsonNode api = io.ballast.cluster.ClusterState.DrainResult.apiView(drained);
        out.put("replacementNodeIds", api.has("replacementNodeIds") ? api.get("replacementNodeIds") : Map.of());
        out.put("unplaced", api.has("unplaced") ? api.get("unplaced") : Map.of());
        watch(name);
        return out;
    }

    /** Goes on with removals a previous run of the node left unfinished. */
    synchronized void resume() {
        for (String name : NodePools.removing(dataDir)) {
            try {
                pool.retireDirectory(name);
                watch(name);
                log.atInfo().addKeyValue("pool", name).log("resuming the removal of a pool");
            } catch (BallastException e) {
                log.atWarn().addKeyValue("pool", name).log("cannot resume the removal of pool: {}", e.getMessage());
            }
        }
    }

    /** The node's replicas in the pool whose move is not under way yet get a replacement elsewhere. */
    private JsonNode drain(String name, List<String> held) {
        List<String> waiting = new ArrayList<>();
        for (String v : held) {
            VolumeRecord rec = member.state().volume(v).orElse(null);
            boolean moving = rec != null && rec.replicas().stream().anyMatch(r -> r.nodeId().equals(member.nodeId())
                    && ReplicaRecord.DRAINING.equals(r.state()));
            if (rec != null && !moving) {
                waiting.add(v);
            }
        }
        if (waiting.isEmpty()) {
            return null;
        }
        return member.raft().submit(new Command.DrainReplicas(Instant.now().toString(), member.nodeId(), waiting,
                member.config().overcommitRatio(), "pool " + name + " is being removed"));
    }

    private void watch(String name) {
        Thread t = Thread.ofVirtual().name("pool-remove-" + name).start(() -> {
            long nextDrainMs = System.currentTimeMillis() + RETRY_MS;
            while (!closed) {
                try {
                    List<String> held = pool.volumesIn(name);
                    if (held.isEmpty()) {
                        synchronized (this) {
                            finish(name);
                        }
                        return;
                    }
                    if (System.currentTimeMillis() >= nextDrainMs) {
                        nextDrainMs = System.currentTimeMillis() + RETRY_MS;
                        drain(name, held);
                    }
                } catch (BallastException e) {
                    log.atDebug().addKeyValue("pool", name).log("pool removal waits: {}", e.getMessage());
                }
                try {
                    Thread.sleep(CHECK_MS);
                } catch (InterruptedException e) {
                    return;
                }
            }
        });
        watchers.add(t);
    }

    private void finish(String name) {
        // the record first: once the pool is gone from the node's answers, pools.json no longer has it either
        // (a crash in between leaves an empty directory unopened at the next start, which is what was asked)
        record(name);
        pool.removeDirectory(name);
        log.atInfo().addKeyValue("pool", name).log("pool removed: its replicas moved to other nodes");
    }

    /** Writes DATA/pools.json from what the pool has open now. */
    private void record() {
        record(null);
    }

    /** As {@link #record()}, without the pool {@code leaving} (null: every pool). */
    private void record(String leaving) {
        List<PoolDirectory> dirs = new ArrayList<>();
        List<String> removing = new ArrayList<>();
        for (PoolSpace s : pool.stats().pools()) {
            if (s.name().equals(leaving)) {
                continue;
            }
            dirs.add(new PoolDirectory(s.name(), Path.of(s.directory())));
            if (s.removing()) {
                removing.add(s.name());
            }
        }
        NodePools.write(dataDir, dirs, removing);
    }

    @Override
    public void close() {
        closed = true;
        List<Thread> ts;
        synchronized (this) {
            ts = List.copyOf(watchers);
        }
        for (Thread t : ts) {
            t.interrupt();
        }
    }
}
