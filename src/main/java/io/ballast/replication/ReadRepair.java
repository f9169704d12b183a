package io.ballast.replication;

import io.ballast.common.BallastException;
import io.ballast.common.ErrorCode;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.function.Consumer;

/**
 * Reads of a {@link VolumeEngine} that repair: a read that fails its checksum on one replica goes to
 * the next, and the good bytes are written back to each bad one while overlapping client writes wait
 * on a byte-range lock (also taken by resync copies). Part of the engine: driver thread only.
 */
final class ReadRepair {
    /** Smallest range a repairing read splits down to (a sector). */
    static final int MIN_REPAIR_BYTES = 512;

    private final VolumeEngine engine;
    /** Byte ranges [start, end) whose copy or repair is under way: overlapping writes wait. */
    private final List<long[]> locks = new ArrayList<>();
    private long checksumRepairs;
    private long checksumMismatchesSeen;

    ReadRepair(VolumeEngine engine) {
        this.engine = engine;
    }

    long checksumRepairs() {
        return checksumRepairs;
    }

    int lockCount() {
        return locks.size();
    }

    /** Holds [start, end): overlapping client writes wait (dispatch checks {@link #locked}). */
    long[] lock(long start, long end) {
        long[] l = {start, end};
        locks.add(l);
        return l;
    }

    void unlock(long[] l) {
        locks.remove(l);
    }

    boolean locked(long start, long end) {
        for (long[] l : locks) {
            if (start < l[1] && l[0] < end) {
                return true;
            }
        }
        return false;
    }

    /**
     * Reads from the first healthy node of {@code preferred}, then any in-sync node. A CHECKSUM_MISMATCH
     * sends the read elsewhere; the good bytes are written back to each bad node while overlapping
     * client writes wait (so the write-back cannot land after, and undo, a newer write).
     */
    void read(long offsetBytes, int lengthBytes, List<String> preferred, Consumer<byte[]> ok,
            Consumer<BallastException> failed) {
        read(offsetBytes, lengthBytes, preferred, false, ok, failed);
    }

    /** As above; {@code bulk}: a copy or scan that reads each byte once (the replica reads past its page cache). */
    void read(long offsetBytes, int lengthBytes, List<String> preferred, boolean bulk, Consumer<byte[]> ok,
            Consumer<BallastException> failed) {
        attemptRead(offsetBytes, lengthBytes, preferred, bulk, new HashSet<>(), new LinkedHashSet<>(), new long[1][], ok,
                failed);
    }

    private void attemptRead(long offsetBytes, int lengthBytes, List<String> preferred, boolean bulk, Set<String> tried,
            Set<String> bad, long[][] heldLock, Consumer<byte[]> ok, Consumer<BallastException> failed) {
        String node = null;
        List<String> candidates = new ArrayList<>(preferred);
        candidates.addAll(engine.layout().inSyncNodes());
        for (String n : candidates) {
            if (engine.layout().inSyncNodes().contains(n) && !engine.faulty(n) && !tried.contains(n)) {
                node = n;
                break;
            }
        }
        if (node == null) {
            if (heldLock[0] != null) {
                unlock(heldLock[0]);
            }
            if (!bad.isEmpty() && lengthBytes > MIN_REPAIR_BYTES) {
                // Every replica has a bad block somewhere in the range, maybe not the same one: halve it.
                int half = Math.max(MIN_REPAIR_BYTES, (lengthBytes / 2) / MIN_REPAIR_BYTES * MIN_REPAIR_BYTES);
                byte[] out = new byte[lengthBytes];
                read(offsetBytes, half, preferred, bulk, first -> {
                    System.arraycopy(first, 0, out, 0, half);
                    read(offsetBytes + half, lengthBytes - half, preferred, bulk, second -> {
                        System.arraycopy(second, 0, out, half, lengthBytes - half);
                        ok.accept(out);
                    }, failed);
                }, failed);
                return;
            }
            failed.accept(bad.isEmpty()
                    ? new BallastException(ErrorCode.IO_ERROR, "no in-sync replica of volume " + engine.layout().volumeName()
                            + " could be read")
                    : new BallastException(ErrorCode.CHECKSUM_MISMATCH, "range " + offsetBytes + "+" + lengthBytes
                            + " of volume " + engine.layout().volumeName() + " fails its checksum on every in-sync replica"));
            return;
        }
        String chosen = node;
        tried.add(chosen);
        engine.send(chosen, id -> new ReplicaRequest.Read(id, engine.layout().volumeUuid(), engine.epoch(), offsetBytes, lengthBytes, bulk), false,
                reply -> {
                    switch (reply) {
                        case ReplicaReply.Data d -> {
                            for (String b : bad) {
                                if (!engine.faulty(b)) {
                                    engine.sendWrite(b, offsetBytes, d.data());
                                    checksumRepairs++;
                                }
                            }
                            if (heldLock[0] != null) {
                                unlock(heldLock[0]);
                            }
                            ok.accept(d.data());
                        }
                        case ReplicaReply.Failed f when f.code() == ErrorCode.CHECKSUM_MISMATCH -> {
                            checksumMismatchesSeen++;
                            bad.add(chosen);
                            if (heldLock[0] == null) {
                                heldLock[0] = lock(offsetBytes, offsetBytes + lengthBytes);
                            }
                            attemptRead(offsetBytes, lengthBytes, preferred, bulk, tried, bad, heldLock, ok, failed);
                        }
                        case ReplicaReply.Fenced f -> {
                            engine.countFenced();
                            engine.failNode(chosen, "fenced");
                            attemptRead(offsetBytes, lengthBytes, preferred, bulk, tried, bad, heldLock, ok, failed);
                        }
                        default -> {
                            engine.failNode(chosen, "read failed: " + reply);
                            attemptRead(offsetBytes, lengthBytes, preferred, bulk, tried, bad, heldLock, ok, failed);
                        }
                    }
                });
    }
}
