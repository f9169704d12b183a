package io.ballast.replication;

import static org.assertj.core.api.Assertions.assertThat;

import io.ballast.common.BallastException;
import io.ballast.common.ErrorCode;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Predicate;
import org.junit.jupiter.api.Test;

/** The engine driven by hand: the test decides every reply, so each rule is checked in isolation. */
class VolumeEngineTest {
    static final long SIZE = 16 * 4096;
    static final long REGION = 4096;

    record Sent(String node, ReplicaRequest request) {}

    static final class HandNet implements ReplicaNetwork {
        final List<Sent> sent = new ArrayList<>();

        @Override
        public void send(String nodeId, ReplicaRequest request) {
            sent.add(new Sent(nodeId, request));
        }

        List<Sent> take(Predicate<Sent> p) {
            List<Sent> out = sent.stream().filter(p).toList();
            sent.removeAll(out);
            return out;
        }
    }

    static final class HandMeta implements MetadataClient {
        final List<InSyncChange> changes = new ArrayList<>();
        final List<java.util.function.Consumer<Result>> callbacks = new ArrayList<>();

        @Override
        public void changeInSync(InSyncChange change, java.util.function.Consumer<Result> done) {
            changes.add(change);
            callbacks.add(done);
        }
    }

    static final class Outcome {
        boolean done;
        byte[] data;
        BallastException error;

        VolumeEngine.Completion completion() {
            return (d, e) -> {
                done = true;
                data = d;
                error = e;
            };
        }
    }

    final HandNet net = new HandNet();
    final HandMeta meta = new HandMeta();
    long nowMs = 1000;
    VolumeEngine engine;

    static VolumeLayout layout(int minInSync, VolumeLayout.Replica... replicas) {
        return new VolumeLayout("v", "uuid", SIZE, 5, 5, "a", minInSync, List.of(replicas));
    }

    static VolumeLayout.Replica inSync(String n) {
        return new VolumeLayout.Replica(n, true, 0, true);
    }

    /** Answers every pending request with Done / Opened / empty Regions (a healthy replica). */
    void answerAll(Predicate<Sent> which) {
        for (Sent s : net.take(which)) {
            engine.onReply(s.node(), healthy(s.request()));
        }
    }

    static ReplicaReply healthy(ReplicaRequest r) {
        return switch (r) {
            case ReplicaRequest.Open o -> new ReplicaReply.Opened(o.requestId(), o.epoch(), 0, SIZE, REGION);
            case ReplicaRequest.ChangedRegions c -> new ReplicaReply.Regions(c.requestId(), new long[0]);
            case ReplicaRequest.Read rd -> new ReplicaReply.Data(rd.requestId(), new byte[rd.lengthBytes()]);
            default -> new ReplicaReply.Done(r.requestId());
        };
    }

    void open(VolumeLayout layout) {
        open(layout, new EngineConfig(100, 1000, 0, 0, 16, 50, 50, 4));
    }

    void open(VolumeLayout layout, EngineConfig config) {
        engine = new VolumeEngine(layout, "a", config, net, meta);
        Outcome opened = new Outcome();
        engine.open(nowMs, e -> opened.done = e == null);
        // Open, ChangedRegions, the first checkpoint's flush and the checkpoint itself; not yet probes.
        for (int i = 0; i < 6; i++) {
            answerAll(s -> true);
        }
        assertThat(opened.done).isTrue();
        assertThat(engine.idle()).isTrue();
    }

    static Predicate<Sent> to(String node) {
        return s -> s.node().equals(node);
    }

    @Test
    void writeIsAcknowledgedOnlyWhenEveryInSyncReplicaAnswered() {
        open(layout(1, inSync("a"), inSync("b"), inSync("c")));
        Outcome w = new Outcome();
        engine.write(0, new byte[] {1, 2, 3}, false, w.completion());
        assertThat(net.sent).extracting(Sent::node).containsExactlyInAnyOrder("a", "b", "c");
        answerAll(to("a"));
        answerAll(to("b"));
        assertThat(w.done).isFalse();
        answerAll(to("c"));
        assertThat(w.done).isTrue();
        assertThat(w.error).isNull();
    }

    @Test
    void aCheckpointAfterWritesPauseCountsThemAsCheckpointed() {
        open(layout(1, inSync("a"), inSync("b")));
        long before = engine.status().counters().writesCheckpointed();
        Outcome w = new Outcome();
        engine.write(0, new byte[] {1, 2, 3}, false, w.completion());
        answerAll(s -> true);
        assertThat(w.done).isTrue();
        assertThat(engine.status().counters().writes()).isEqualTo(1);
        assertThat(engine.status().counters().writesCheckpointed()).as("no checkpoint yet").isEqualTo(before);
        for (int i = 0; i < 10 && engine.status().counters().writesCheckpointed() < 1; i++) {
            engine.tick(nowMs += 60); // writes paused for QUIET_CHECKPOINT_MS: flush, then Checkpoint(g)
            for (int j = 0; j < 3; j++) {
                answerAll(s -> true);
            }
        }
        assertThat(engine.status().counters().writesCheckpointed()).isEqualTo(1);
    }

    @Test
    void failingReplicaIsRemovedBeforeTheWriteIsAcknowledged() {
        open(layout(1, inSync("a"), inSync("b")));
        Outcome w = new Outcome();
        engine.write(4096, new byte[10], false, w.completion());
        answerAll(to("a"));
        Sent toB = net.take(to("b")).getFirst();
        engine.onReply("b", new ReplicaReply.Failed(toB.request().requestId(), ErrorCode.IO_ERROR, "disk", -1));
        assertThat(w.done).isFalse();
        assertThat(meta.changes).hasSize(1);
        assertThat(meta.changes.getFirst().remove()).containsExactly("b");
        assertThat(meta.changes.getFirst().expectedEpoch()).isEqualTo(5);
        engine.onMetadataResult(meta.changes.getFirst(), new MetadataClient.Result.Committed(new VolumeLayout("v", "uuid",
                SIZE, 6, 5, "a", 1, List.of(inSync("a"), new VolumeLayout.Replica("b", false, 0, true)))));
        assertThat(w.done).isTrue();
        assertThat(w.error).isNull();
    }

    static Predicate<Sent> grow() {
        return s -> s.request() instanceof ReplicaRequest.Grow;
    }

    /** The kinds of request sent to {@code node}, in send order. */
    List<String> kindsTo(String node) {
        return net.sent.stream().filter(to(node)).map(s -> s.request().getClass().getSimpleName()).toList();
    }

    @Test
    void aCommittedResizeGrowsEveryReplicaOnItsStreamBeforeAnythingPastTheOldEnd() {
        open(layout(1, inSync("a"), inSync("b"), inSync("c")));
        Outcome past = new Outcome();
        engine.write(SIZE, new byte[4096], false, past.completion());
        assertThat(past.error.code()).isEqualTo(ErrorCode.OUT_OF_RANGE);

        engine.onLayoutChanged(new VolumeLayout("v", "uuid", 2 * SIZE, 5, 5, "a", 1,
                List.of(inSync("a"), inSync("b"), inSync("c")))); // same epoch: a resize does not bump it
        assertThat(engine.sizeBytesForClients()).isEqualTo(2 * SIZE);
        Outcome w = new Outcome();
        engine.write(SIZE, new byte[4096], false, w.completion());
        for (String n : List.of("a", "b", "c")) {
            assertThat(kindsTo(n)).as(n).containsExactly("Grow", "Write");
        }
        assertThat(net.sent.stream().filter(grow()).map(s -> ((ReplicaRequest.Grow) s.request()).sizeBytes()))
                .containsOnly(2 * SIZE);
        // b cannot grow (e.g. its disk is full): it is removed before the write is acknowledged
        Sent growB = net.take(grow().and(to("b"))).getFirst();
        engine.onReply("b", new ReplicaReply.Failed(growB.request().requestId(), ErrorCode.NO_SPACE, "full", -1));
        answerAll(to("a").or(to("c")));
        assertThat(w.done).isFalse();
        assertThat(meta.changes).singleElement().satisfies(c -> assertThat(c.remove()).containsExactly("b"));
        // the commit's answer carries the size of the moment it applied; the engine never serves less
        engine.onMetadataResult(meta.changes.getFirst(), new MetadataClient.Result.Committed(new VolumeLayout("v", "uuid",
                SIZE, 6, 5, "a", 1, List.of(inSync("a"), new VolumeLayout.Replica("b", false, 0, true), inSync("c")))));
        assertThat(w.done).isTrue();
        assertThat(w.error).isNull();
        assertThat(engine.layout().sizeBytes()).isEqualTo(2 * SIZE);
        assertThat(engine.sizeBytesForClients()).isEqualTo(2 * SIZE);
    }

    @Test
    void aReplicaThatOpensSmallerThanTheCommittedSizeIsGrownFirst() {
        // b missed the resize (its node was down): it answers Open with the old size
        engine = new VolumeEngine(new VolumeLayout("v", "uuid", 2 * SIZE, 5, 5, "a", 1,
                List.of(inSync("a"), new VolumeLayout.Replica("b", false, 0, true))), "a",
                new EngineConfig(100, 1000, 0, 0, 16, 50, 50, 4), net, meta);
        Outcome opened = new Outcome();
        engine.open(nowMs, e -> opened.done = e == null);
        for (Sent s : net.take(s -> s.request() instanceof ReplicaRequest.Open)) {
            long size = s.node().equals("a") ? 2 * SIZE : SIZE;
            engine.onReply(s.node(), new ReplicaReply.Opened(s.request().requestId(), 5, 0, size, REGION));
        }
        assertThat(kindsTo("a")).doesNotContain("Grow");
        for (int i = 0; i < 6; i++) {
            answerAll(to("a"));
        }
        assertThat(opened.done).isTrue();
        // b is probed once serving: the probe's answer still says the old size, so Grow goes first
        net.take(to("b"));
        engine.tick(nowMs += 60);
        Sent probe = net.take(to("b")).getFirst();
        assertThat(probe.request()).isInstanceOf(ReplicaRequest.Open.class);
        engine.onReply("b", new ReplicaReply.Opened(probe.request().requestId(), 5, 0, SIZE, REGION));
        assertThat(kindsTo("b")).first().isEqualTo("Grow");
        assertThat(((ReplicaRequest.Grow) net.sent.stream().filter(to("b")).findFirst().orElseThrow().request()).sizeBytes())
                .isEqualTo(2 * SIZE);
    }

    @Test
    void timeoutCountsAsFailure() {
        open(layout(1, inSync("a"), inSync("b")));
        Outcome w = new Outcome();
        engine.write(0, new byte[10], false, w.completion());
        answerAll(to("a"));
        net.take(to("b"));
        engine.tick(nowMs += 200);
        assertThat(meta.changes).singleElement().satisfies(c -> assertThat(c.remove()).containsExactly("b"));
        assertThat(w.done).isFalse();
    }

    @Test
    void fencedEngineFailsEveryWrite() {
        open(layout(1, inSync("a"), inSync("b")));
        Outcome w = new Outcome();
        engine.write(0, new byte[10], false, w.completion());
        answerAll(to("a"));
        Sent toB = net.take(to("b")).getFirst();
        engine.onReply("b", new ReplicaReply.Fenced(toB.request().requestId(), 9));
        engine.onMetadataResult(meta.changes.getFirst(), new MetadataClient.Result.Fenced(new VolumeLayout("v", "uuid",
                SIZE, 9, 9, "other", 1, List.of(inSync("a"), inSync("b")))));
        assertThat(w.error).isNotNull();
        assertThat(w.error.code()).isEqualTo(ErrorCode.IO_ERROR);
        assertThat(engine.fenced()).isTrue();
        assertThat(engine.status().state()).isEqualTo("fenced");
        Outcome later = new Outcome();
        engine.write(0, new byte[1], false, later.completion());
        assertThat(later.error.code()).isEqualTo(ErrorCode.IO_ERROR);
        Outcome read = new Outcome();
        engine.read(0, 1, read.completion());
        assertThat(read.error.code()).isEqualTo(ErrorCode.IO_ERROR);
    }

    @Test
    void belowMinInSyncWritesFailAndReadsWork() {
        open(layout(2, inSync("a"), new VolumeLayout.Replica("b", false, 0, true)));
        assertThat(engine.status().state()).isEqualTo("suspended");
        Outcome w = new Outcome();
        engine.write(0, new byte[10], false, w.completion());
        assertThat(w.error.code()).isEqualTo(ErrorCode.IO_ERROR);
        assertThat(net.take(s -> s.request() instanceof ReplicaRequest.Write)).isEmpty();
        Outcome r = new Outcome();
        engine.read(0, 10, r.completion());
        answerAll(s -> s.request() instanceof ReplicaRequest.Read);
        assertThat(r.error).isNull();
        assertThat(r.data).hasSize(10);
    }

    @Test
    void outOfRangeAndNotOpen() {
        engine = new VolumeEngine(layout(1, inSync("a")), "a", EngineConfig.defaults(), net, meta);
        Outcome early = new Outcome();
        engine.write(0, new byte[1], false, early.completion());
        assertThat(early.error.code()).isEqualTo(ErrorCode.UNAVAILABLE);
        open(layout(1, inSync("a")));
        Outcome w = new Outcome();
        engine.write(SIZE - 1, new byte[2], false, w.completion());
        assertThat(w.error.code()).isEqualTo(ErrorCode.OUT_OF_RANGE);
    }

    @Test
    void deltaResyncCopiesOnlyChangedRegions() {
        long missed = (5L << 24) | 1;
        open(layout(1, inSync("a"), new VolumeLayout.Replica("b", false, missed, true)));
        engine.tick(nowMs += 1); // probe b: its store completed the checkpoint it was removed at
        for (Sent s : net.take(s -> s.node().equals("b") && s.request() instanceof ReplicaRequest.Open)) {
            engine.onReply("b", new ReplicaReply.Opened(s.request().requestId(), 1, missed, SIZE, REGION));
        }
        answerAll(s -> s.request() instanceof ReplicaRequest.Checkpoint); // b's generation raised first
        List<Sent> lists = net.take(s -> s.request() instanceof ReplicaRequest.ChangedRegions);
        assertThat(lists).hasSize(2);
        for (Sent s : lists) {
            assertThat(((ReplicaRequest.ChangedRegions) s.request()).sinceGeneration()).isEqualTo(missed - 1);
            long[] regions = s.node().equals("a") ? new long[] {2, 7} : new long[] {7};
            engine.onReply(s.node(), new ReplicaReply.Regions(s.request().requestId(), regions));
        }
        long copied = 0;
        for (int i = 0; i < 20 && meta.changes.isEmpty(); i++) {
            engine.tick(nowMs += 10);
            for (Sent s : net.take(x -> true)) {
                if (s.request() instanceof ReplicaRequest.Write wr) {
                    assertThat(s.node()).isEqualTo("b");
                    copied += wr.data().length;
                }
                engine.onReply(s.node(), s.request() instanceof ReplicaRequest.Read rd
                        ? new ReplicaReply.Data(rd.requestId(), ones(rd.lengthBytes())) : healthy(s.request()));
            }
        }
        assertThat(copied).isEqualTo(2 * REGION);
        assertThat(engine.status().counters().resyncBytes()).isEqualTo(2 * REGION);
        assertThat(meta.changes).singleElement().satisfies(c -> assertThat(c.add()).containsExactly("b"));
    }

    /**
     * Seed 2062: an engine whose first checkpoint has not gone out yet (its flush unanswered) resyncs b,
     * whose store is at an older generation than the mark it missed since. b must be raised to at least
     * that mark before anything else reaches it: a write b then applies but the source fails is tagged
     * at or above the mark b is removed with again, so the next delta resync lists its region (before,
     * it was tagged below and neither side listed it, leaving b different after settling).
     */
    @Test
    void aResyncRaisesTheTargetToItsMissedGenerationBeforeThisEngineSentAnyCheckpoint() {
        long missed = (4L << 24) | 1;
        long bGeneration = (3L << 24) | 2;
        engine = new VolumeEngine(layout(1, inSync("a"), new VolumeLayout.Replica("b", false, missed, true)), "a",
                new EngineConfig(100, 1000, 0, 0, 16, 50, 50, 4), net, meta);
        Outcome opened = new Outcome();
        engine.open(nowMs, e -> opened.done = e == null);
        for (int i = 0; i < 6; i++) {
            answerAll(s -> !(s.request() instanceof ReplicaRequest.Flush)); // the first checkpoint stays in its flush
        }
        assertThat(opened.done).isTrue();
        assertThat(net.sent).noneMatch(s -> s.request() instanceof ReplicaRequest.Checkpoint);
        net.take(s -> s.request() instanceof ReplicaRequest.Flush);

        engine.tick(nowMs += 1); // probe b
        for (Sent s : net.take(s -> s.node().equals("b") && s.request() instanceof ReplicaRequest.Open)) {
            engine.onReply("b", new ReplicaReply.Opened(s.request().requestId(), 5, bGeneration, SIZE, REGION));
        }
        List<Sent> toB = net.sent.stream().filter(to("b")).toList();
        assertThat(toB).isNotEmpty();
        assertThat(toB.getFirst().request()).as("the first request of b's resync").isInstanceOfSatisfying(
                ReplicaRequest.Checkpoint.class, c -> assertThat(c.generation()).isGreaterThanOrEqualTo(missed));
        // b's own blocks are listed from its stored generation (below its mark): see the test below
        assertThat(toB).anySatisfy(s -> assertThat(s.request()).isInstanceOfSatisfying(ReplicaRequest.ChangedRegions.class,
                c -> assertThat(c.sinceGeneration()).isEqualTo(bGeneration - 1)));
    }

    /**
     * Seeds 9927 and 10957: a new engine opened without b took b's mark from the answering replica's
     * generation, though the old engine's last Checkpoint never reached b; a write b applied (and the
     * source never got) is tagged with b's older generation. The resync must list b from that generation,
     * or neither side lists the region and b keeps bytes nobody else has.
     */
    @Test
    void aResyncListsTheTargetFromItsOwnGenerationWhenThatIsBelowItsMark() {
        long missed = (5L << 24) | 3;
        long bGeneration = (5L << 24) | 2;
        open(layout(1, inSync("a"), new VolumeLayout.Replica("b", false, missed, true)));
        engine.tick(nowMs += 1); // probe b
        for (Sent s : net.take(s -> s.node().equals("b") && s.request() instanceof ReplicaRequest.Open)) {
            engine.onReply("b", new ReplicaReply.Opened(s.request().requestId(), 5, bGeneration, SIZE, REGION));
        }
        answerAll(s -> s.request() instanceof ReplicaRequest.Checkpoint);
        // a's blocks since the mark: none; b holds region 2 tagged bGeneration (a write only it applied)
        for (Sent s : net.take(x -> x.request() instanceof ReplicaRequest.ChangedRegions)) {
            ReplicaRequest.ChangedRegions c = (ReplicaRequest.ChangedRegions) s.request();
            boolean listsB2 = s.node().equals("b") && c.sinceGeneration() < bGeneration;
            engine.onReply(s.node(), new ReplicaReply.Regions(c.requestId(), listsB2 ? new long[] {2} : new long[0]));
        }
        List<ReplicaRequest> toB = new ArrayList<>();
        for (int i = 0; i < 20 && meta.changes.isEmpty(); i++) {
            engine.tick(nowMs += 10);
            for (Sent s : net.take(x -> true)) {
                if (s.node().equals("b")) {
                    toB.add(s.request());
                }
                engine.onReply(s.node(), withData(s.request()));
            }
        }
        assertThat(toB).as("region 2 is copied over b's own write").anySatisfy(r -> assertThat(r)
                .isInstanceOfSatisfying(ReplicaRequest.Write.class, w -> assertThat(w.offsetBytes()).isEqualTo(2 * REGION)));
        assertThat(meta.changes).singleElement().satisfies(c -> assertThat(c.add()).containsExactly("b"));
    }

    @Test
    void aReadAnsweredPastALostRequestIsReadAgainElsewhere() {
        open(layout(1, inSync("a"), inSync("b")));
        Outcome w = new Outcome();
        engine.write(0, new byte[] {1, 2, 3}, false, w.completion());
        Outcome r = new Outcome();
        engine.read(0, 3, r.completion()); // a first: it is the local node
        answerAll(s -> s.node().equals("b"));
        net.take(s -> s.node().equals("a") && s.request() instanceof ReplicaRequest.Write); // lost with a's connection
        // a answers the read, overtaking the lost write: its bytes may lack that write (seed 9186: a resync
        // copied such a read over the write on its target), so the read goes to b.
        for (Sent s : net.take(s -> s.node().equals("a") && s.request() instanceof ReplicaRequest.Read)) {
            engine.onReply("a", new ReplicaReply.Data(s.request().requestId(), new byte[3]));
        }
        assertThat(r.done).as("not answered from a").isFalse();
        for (Sent s : net.take(s -> s.node().equals("b") && s.request() instanceof ReplicaRequest.Read)) {
            engine.onReply("b", new ReplicaReply.Data(s.request().requestId(), new byte[] {1, 2, 3}));
        }
        assertThat(r.done).isTrue();
        assertThat(r.data).containsExactly(1, 2, 3);
        assertThat(engine.faulty("a")).isTrue();
    }

    @Test
    void aStuckInSyncReplicaReopenedBelowTheLastCheckpointIsRaisedBeforeAnyWrite() {
        open(layout(1, inSync("a")));
        long g = engine.lastSentGeneration();
        assertThat(g).isPositive();
        Outcome w = new Outcome();
        engine.write(0, new byte[] {1, 2, 3}, false, w.completion());
        for (Sent s : net.take(s -> s.request() instanceof ReplicaRequest.Write)) {
            engine.onReply("a", new ReplicaReply.Failed(s.request().requestId(), ErrorCode.UNAVAILABLE, "connection lost", -1));
        }
        net.take(s -> true);
        // The only in-sync replica is kept (stuck) and probed; it comes back at an older generation (it
        // missed the last checkpoint: seed 10959).
        for (int i = 0; i < 50 && net.sent.stream().noneMatch(s -> s.request() instanceof ReplicaRequest.Open); i++) {
            engine.tick(nowMs += 20);
        }
        for (Sent s : net.take(s -> s.request() instanceof ReplicaRequest.Open)) {
            engine.onReply("a", new ReplicaReply.Opened(s.request().requestId(), 5, g - 1, SIZE, REGION));
        }
        Outcome w2 = new Outcome();
        engine.write(4096, new byte[] {4, 5, 6}, false, w2.completion());
        List<ReplicaRequest> toA = net.sent.stream().filter(to("a")).map(Sent::request).toList();
        assertThat(toA).anySatisfy(q -> assertThat(q).isInstanceOf(ReplicaRequest.Write.class));
        assertThat(toA.getFirst()).as("the first request after the reopen").isInstanceOfSatisfying(ReplicaRequest.Checkpoint.class,
                c -> assertThat(c.generation()).isEqualTo(g));
    }

    static byte[] ones(int length) {
        byte[] b = new byte[length];
        java.util.Arrays.fill(b, (byte) 1);
        return b;
    }

    @Test
    void resyncSendsAChunkThatReadsAsZeroesAsWriteZeroes() {
        long missed = (5L << 24) | 1;
        open(layout(1, inSync("a"), new VolumeLayout.Replica("b", false, missed, true)));
        engine.tick(nowMs += 1);
        answerAll(s -> s.request() instanceof ReplicaRequest.Open);
        answerAll(s -> s.request() instanceof ReplicaRequest.Checkpoint);
        for (Sent s : net.take(x -> x.request() instanceof ReplicaRequest.ChangedRegions)) {
            engine.onReply(s.node(), new ReplicaReply.Regions(s.request().requestId(), new long[] {2, 3}));
        }
        List<ReplicaRequest> toB = new ArrayList<>();
        for (int i = 0; i < 20 && meta.changes.isEmpty(); i++) {
            engine.tick(nowMs += 10);
            for (Sent s : net.take(x -> true)) {
                if (s.node().equals("b")) {
                    toB.add(s.request());
                }
                // region 2 reads as zeroes, region 3 holds data
                engine.onReply(s.node(), s.request() instanceof ReplicaRequest.Read rd
                        ? new ReplicaReply.Data(rd.requestId(), rd.offsetBytes() == 3 * REGION ? ones(rd.lengthBytes())
                                : new byte[rd.lengthBytes()])
                        : healthy(s.request()));
            }
        }
        assertThat(toB).filteredOn(r -> r instanceof ReplicaRequest.WriteZeroes).singleElement().satisfies(r -> {
            ReplicaRequest.WriteZeroes z = (ReplicaRequest.WriteZeroes) r;
            assertThat(z.offsetBytes()).isEqualTo(2 * REGION);
            assertThat(z.lengthBytes()).isEqualTo(REGION);
            assertThat(z.mayDeallocate()).isTrue();
            assertThat(z.fua()).isFalse();
        });
        assertThat(toB).filteredOn(r -> r instanceof ReplicaRequest.Write).singleElement()
                .satisfies(r -> assertThat(((ReplicaRequest.Write) r).offsetBytes()).isEqualTo(3 * REGION));
        assertThat(engine.status().counters().resyncBytes()).isEqualTo(2 * REGION);
        assertThat(meta.changes).singleElement().satisfies(c -> assertThat(c.add()).containsExactly("b"));
    }

    /** A healthy reply, with reads answered by non-zero data (so copies travel as writes). */
    static ReplicaReply withData(ReplicaRequest r) {
        return switch (r) {
            case ReplicaRequest.Read rd -> new ReplicaReply.Data(rd.requestId(), ones(rd.lengthBytes()));
            // a full rebuild's listing (since -1): every region holds data
            case ReplicaRequest.ChangedRegions c when c.sinceGeneration() < 0 ->
                    new ReplicaReply.Regions(c.requestId(), java.util.stream.LongStream.range(0, SIZE / REGION).toArray());
            default -> healthy(r);
        };
    }

    @Test
    void fullRebuildCopiesOnlyTheRegionsWrittenOnEitherSide() {
        open(layout(1, inSync("a"), new VolumeLayout.Replica("b", false, 0, true))); // missed 0: a full rebuild
        engine.tick(nowMs += 1); // probe b
        answerAll(s -> s.request() instanceof ReplicaRequest.Open);
        answerAll(s -> s.request() instanceof ReplicaRequest.Checkpoint);
        List<Sent> lists = net.take(s -> s.request() instanceof ReplicaRequest.ChangedRegions);
        assertThat(lists).extracting(Sent::node).containsExactlyInAnyOrder("a", "b");
        for (Sent s : lists) {
            assertThat(((ReplicaRequest.ChangedRegions) s.request()).sinceGeneration()).isEqualTo(-1);
            // a thin source wrote regions 1 and 9; the target holds stale data in region 12 (read as zeroes now)
            long[] regions = s.node().equals("a") ? new long[] {1, 9} : new long[] {12};
            engine.onReply(s.node(), new ReplicaReply.Regions(s.request().requestId(), regions));
        }
        List<Long> written = new ArrayList<>();
        List<Long> zeroed = new ArrayList<>();
        for (int i = 0; i < 20 && meta.changes.isEmpty(); i++) {
            engine.tick(nowMs += 10);
            for (Sent s : net.take(x -> true)) {
                if (s.request() instanceof ReplicaRequest.Write wr && s.node().equals("b")) {
                    written.add(wr.offsetBytes() / REGION);
                } else if (s.request() instanceof ReplicaRequest.WriteZeroes z && s.node().equals("b")) {
                    zeroed.add(z.offsetBytes() / REGION);
                }
                engine.onReply(s.node(), s.request() instanceof ReplicaRequest.Read rd
                        ? new ReplicaReply.Data(rd.requestId(), rd.offsetBytes() == 12 * REGION ? new byte[rd.lengthBytes()]
                                : ones(rd.lengthBytes()))
                        : healthy(s.request()));
            }
        }
        assertThat(written).containsExactly(1L, 9L);
        assertThat(zeroed).containsExactly(12L);
        assertThat(engine.status().counters().resyncBytes()).isEqualTo(3 * REGION); // of 16 regions
        assertThat(meta.changes).singleElement().satisfies(c -> assertThat(c.add()).containsExactly("b"));
    }

    @Test
    void interruptedFullResyncResumesAfterWhatACheckpointFlushMadeDurable() {
        assertThat(resumeAndCountCopiedRegions(true)).isEqualTo(8);
    }

    @Test
    void interruptedFullResyncStartsOverOnAStoreThatIsNotTheOneItCopiedTo() {
        assertThat(resumeAndCountCopiedRegions(false)).isEqualTo(16);
    }

    /** Copies 8 of 16 regions to b, checkpoints, fails b, probes it again; returns the regions copied then. */
    long resumeAndCountCopiedRegions(boolean sameStore) {
        // Throttled to one region per 100 ms tick, so the test decides how far the copy gets.
        open(layout(1, inSync("a"), new VolumeLayout.Replica("b", false, 0, true)),
                new EngineConfig(10_000, 1000, 10 * REGION, 0, 16, 50, 50, 4));
        engine.tick(nowMs += 1); // probe b
        answerAll(s -> s.request() instanceof ReplicaRequest.Open);
        long startGeneration = net.sent.stream().filter(s -> s.node().equals("b"))
                .map(Sent::request).filter(r -> r instanceof ReplicaRequest.Checkpoint)
                .mapToLong(r -> ((ReplicaRequest.Checkpoint) r).generation()).findFirst().orElseThrow();
        assertThat(startGeneration).isPositive();
        int written = 0;
        for (int i = 0; i < 100 && written < 8; i++) {
            written += answerInOrder(false);
            if (written < 8) {
                engine.tick(nowMs += 100);
            }
        }
        written += answerInOrder(false);
        assertThat(written).isEqualTo(8);
        // A client write, then a quiet checkpoint: its flush reaches b too, after the 8 regions.
        Outcome w = new Outcome();
        engine.write(0, ones(100), false, w.completion());
        answerInOrder(false);
        assertThat(w.done).isTrue();
        engine.tick(nowMs += 150);
        answerInOrder(false);
        answerInOrder(false);
        // b fails (it refuses a write).
        Outcome w2 = new Outcome();
        engine.write(0, ones(100), false, w2.completion());
        answerInOrder(true);
        assertThat(w2.done).isTrue();
        // b answers its probe: the same store (generation at least the one the resync raised it to) or a new one.
        engine.tick(nowMs += 100);
        for (Sent s : net.take(x -> true)) {
            engine.onReply(s.node(), s.request() instanceof ReplicaRequest.Open o && s.node().equals("b")
                    ? new ReplicaReply.Opened(o.requestId(), o.epoch(), sameStore ? startGeneration : 0, SIZE, REGION)
                    : withData(s.request()));
        }
        long copied = 0;
        for (int i = 0; i < 100 && meta.changes.isEmpty(); i++) {
            engine.tick(nowMs += 100);
            for (Sent s : net.take(x -> true)) {
                if (s.request() instanceof ReplicaRequest.ChangedRegions c && c.sinceGeneration() >= 0) { // < 0: a new full rebuild
                    assertThat(sameStore).isTrue();
                    assertThat(c.sinceGeneration()).isEqualTo(startGeneration - 1);
                }
                if (s.request() instanceof ReplicaRequest.Write wr && s.node().equals("b")) {
                    copied += wr.data().length;
                }
                engine.onReply(s.node(), withData(s.request()));
            }
        }
        assertThat(meta.changes).singleElement().satisfies(c -> assertThat(c.add()).containsExactly("b"));
        return copied / REGION;
    }

    /** Answers what was sent, in order, until nothing more is; writes to b fail when asked. Returns b's writes. */
    int answerInOrder(boolean bFails) {
        int writesToB = 0;
        for (List<Sent> batch = net.take(x -> true); !batch.isEmpty(); batch = net.take(x -> true)) {
            for (Sent s : batch) {
                boolean toB = s.node().equals("b") && s.request() instanceof ReplicaRequest.Write;
                if (toB) {
                    writesToB++;
                }
                engine.onReply(s.node(), toB && bFails
                        ? new ReplicaReply.Failed(s.request().requestId(), ErrorCode.IO_ERROR, "disk", -1)
                        : withData(s.request()));
            }
        }
        return writesToB;
    }

    @Test
    void checksumMismatchIsRepairedFromAnotherReplica() {
        open(layout(1, inSync("a"), inSync("b")));
        Outcome r = new Outcome();
        engine.read(100, 50, r.completion());
        Sent first = net.take(s -> true).getFirst();
        assertThat(first.node()).isEqualTo("a"); // the local replica first
        engine.onReply("a", new ReplicaReply.Failed(first.request().requestId(), ErrorCode.CHECKSUM_MISMATCH, "crc", 100));
        Sent second = net.take(s -> true).getFirst();
        assertThat(second.node()).isEqualTo("b");
        byte[] good = new byte[50];
        good[0] = 42;
        // A client write to the range waits until the good bytes went back to a.
        Outcome w = new Outcome();
        engine.write(120, new byte[5], false, w.completion());
        assertThat(net.sent).isEmpty();
        engine.onReply("b", new ReplicaReply.Data(second.request().requestId(), good));
        assertThat(r.data).isEqualTo(good);
        List<Sent> after = net.take(s -> true);
        assertThat(after.getFirst().node()).isEqualTo("a");
        assertThat(((ReplicaRequest.Write) after.getFirst().request()).data()).isEqualTo(good);
        assertThat(after).hasSize(3); // the repair, then the client write to a and b
        assertThat(engine.status().counters().checksumRepairs()).isEqualTo(1);
    }

    static final class SnapOutcome {
        boolean done;
        List<String> holders;
        BallastException error;

        VolumeEngine.SnapshotCompletion completion() {
            return (h, e) -> {
                done = true;
                holders = h;
                error = e;
            };
        }
    }

    @Test
    void aSnapshotIsCutBetweenTheSameTwoWritesOnEveryInSyncStream() {
        open(layout(1, inSync("a"), inSync("b"), inSync("c")));
        net.sent.clear();
        Outcome before = new Outcome();
        engine.write(0, new byte[] {1}, false, before.completion());
        SnapOutcome snap = new SnapOutcome();
        engine.snapshot(ReplicaRequest.SnapshotAction.CREATE, "s1", snap.completion());
        Outcome after = new Outcome();
        engine.write(0, new byte[] {2}, false, after.completion());
        for (String n : List.of("a", "b", "c")) {
            assertThat(kindsTo(n)).containsExactly("Write", "Snapshot", "Write");
        }
        assertThat(net.sent).filteredOn(s -> s.request() instanceof ReplicaRequest.Snapshot)
                .extracting(s -> ((ReplicaRequest.Snapshot) s.request()).snapshotUuid()).containsOnly("s1");
        answerAll(to("a"));
        answerAll(to("b"));
        assertThat(snap.done).isFalse(); // c has not answered
        answerAll(to("c"));
        assertThat(before.done && after.done && snap.done).isTrue();
        assertThat(snap.error).isNull();
        assertThat(snap.holders).containsExactly("a", "b", "c");
    }

    @Test
    void aReplicaFailingTheSnapshotLeavesTheInSyncSetBeforeTheSnapshotCompletes() {
        open(layout(1, inSync("a"), inSync("b")));
        net.sent.clear();
        SnapOutcome snap = new SnapOutcome();
        engine.snapshot(ReplicaRequest.SnapshotAction.CREATE, "s1", snap.completion());
        answerAll(to("a"));
        Sent toB = net.take(to("b")).getFirst();
        engine.onReply("b", new ReplicaReply.Failed(toB.request().requestId(), ErrorCode.NO_SPACE, "full", -1));
        assertThat(snap.done).isFalse();
        assertThat(meta.changes).singleElement().satisfies(c -> assertThat(c.remove()).containsExactly("b"));
        engine.onMetadataResult(meta.changes.getFirst(), new MetadataClient.Result.Committed(new VolumeLayout("v", "uuid",
                SIZE, 6, 5, "a", 1, List.of(inSync("a"), new VolumeLayout.Replica("b", false, 0, true)))));
        assertThat(snap.done).isTrue();
        assertThat(snap.error).isNull();
        assertThat(snap.holders).containsExactly("a");
    }

    @Test
    void aSnapshotIsNotSentToAResyncTargetAndIsRefusedBelowMinInSync() {
        open(layout(2, inSync("a"), inSync("b")));
        net.sent.clear();
        Sent toB;
        engine.write(0, new byte[] {1}, false, new Outcome().completion());
        answerAll(to("a"));
        toB = net.take(to("b")).getFirst();
        engine.onReply("b", new ReplicaReply.Failed(toB.request().requestId(), ErrorCode.IO_ERROR, "disk", -1));
        engine.onMetadataResult(meta.changes.getFirst(), new MetadataClient.Result.Committed(new VolumeLayout("v", "uuid",
                SIZE, 6, 5, "a", 2, List.of(inSync("a"), new VolumeLayout.Replica("b", false, 0, true)))));
        SnapOutcome snap = new SnapOutcome();
        engine.snapshot(ReplicaRequest.SnapshotAction.CREATE, "s1", snap.completion());
        assertThat(snap.done).isTrue();
        assertThat(snap.error).isNotNull(); // suspended: one in sync, two required
        assertThat(net.sent).noneMatch(s -> s.request() instanceof ReplicaRequest.Snapshot);
    }
}
