package io.ballast.cluster;

import static org.assertj.core.api.Assertions.assertThat;

import io.ballast.testing.MiniCluster;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Replacing a node's Raft client (as a join, reconfiguration or heal does) while writes are running
 * through it: none of them may fail. Closing the old client at once failed running calls inside Ratis
 * ("proxy" is null NPE, or AlreadyClosedException). On the code before the fix this test failed with
 * "metadata write failed: client-... is already CLOSED" (8 writers, 200 swaps).
 */
class RaftClientSwapTest {
    @TempDir
    Path dir;

    @Test
    void writesRunningThroughAReplacedClientSucceed() throws Exception {
        try (MiniCluster c = MiniCluster.start(dir, 3)) {
            c.awaitLeader();
            // a follower: its writes go through the client (the leader hands them to its own server)
            int f = 1;
            while (c.member(f).raft().isLeader()) {
                f++;
            }
            RaftNode raft = c.member(f).raft();
            String me = c.member(f).nodeId();
            AtomicBoolean stop = new AtomicBoolean();
            AtomicInteger done = new AtomicInteger();
            ConcurrentLinkedQueue<Throwable> failures = new ConcurrentLinkedQueue<>();
            List<Thread> writers = new ArrayList<>();
            for (int t = 0; t < 8; t++) {
                writers.add(Thread.ofVirtual().start(() -> {
                    while (!stop.get()) {
                        try {
                            raft.submit(new Command.Heartbeat(Instant.now().toString(), me, 1L << 30, 1L << 29));
                            done.incrementAndGet();
                        } catch (RuntimeException e) {
                            failures.add(e);
                        }
                    }
                }));
            }
            for (int swap = 0; swap < 200; swap++) {
                raft.setClientPeers(List.copyOf(raft.currentPeers()));
                Thread.sleep(swap % 4);
            }
            stop.set(true);
            for (Thread w : writers) {
                w.join();
            }
            assertThat(failures).isEmpty();
            assertThat(done.get()).isPositive();
        }
    }
}
