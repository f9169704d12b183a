package io.ballast.control;

import io.ballast.cluster.SnapshotRecord;
import io.ballast.storage.FileStoragePool;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * Snapshot layers a replica keeps that the metadata does not list it as holding: a cut whose engine's
 * node died before its {@code CreateSnapshot} committed, a snapshot deleted while this replica was being
 * rebuilt (it was not sent the delete), or a copy into a new replica whose {@code AddSnapshotHolder}
 * never committed. Nobody can read them; they only hold space (and what was overwritten after them).
 * Found and removed by the node ({@link ClusterVolumeService}'s reconcile pass).
 */
final class UnrecordedSnapshotLayers {
    /**
     * A layer younger than this is left alone: its cut may be on its way to the metadata (the engine
     * submits {@code CreateSnapshot} after every replica answered), or its copy's record may be.
     */
    static final Duration GRACE = Duration.ofMinutes(2);

    private UnrecordedSnapshotLayers() {}

    /**
     * The snapshot uuids of {@code local} (this replica's snapshots) that no snapshot of
     * {@code recorded} (the volume's, from the metadata) held by {@code nodeId} names, and that were cut
     * at least {@link #GRACE} before {@code now}.
     */
    static List<String> find(List<FileStoragePool.SnapshotInfo> local, List<SnapshotRecord> recorded, String volumeUuid,
            String nodeId, Instant now) {
        Set<String> held = recorded.stream().filter(s -> s.volumeUuid().equals(volumeUuid) && s.nodes().contains(nodeId))
                .map(SnapshotRecord::uuid).collect(Collectors.toSet());
        return local.stream().filter(s -> !held.contains(s.uuid()))
                .filter(s -> !Instant.parse(s.createdAt()).plus(GRACE).isAfter(now))
                .map(FileStoragePool.SnapshotInfo::uuid).toList();
    }

    /**
     * Of {@code doomed} (this replica's unrecorded layers), those that no snapshot in the metadata names
     * at all, whoever holds it: a cut whose {@code CreateSnapshot} never committed, a snapshot deleted since.
     * Only these may be removed from an attached volume, through its engine: the engine sends the delete to
     * every in-sync replica, and a uuid still recorded for other holders (this replica answered its cut too
     * late, or its copy was not recorded) would lose them a snapshot they hold.
     */
    static List<String> namedByNoSnapshot(List<String> doomed, List<SnapshotRecord> recorded) {
        Set<String> named = recorded.stream().map(SnapshotRecord::uuid).collect(Collectors.toSet());
        return doomed.stream().filter(u -> !named.contains(u)).toList();
    }

    /** Removes them (each a snapshot delete: the layer above merges down into its layer; every other view keeps its bytes). */
    static void remove(FileStoragePool pool, String volume, List<String> uuids) {
        for (String uuid : uuids) {
            pool.deleteSnapshot(volume, uuid);
        }
    }
}
