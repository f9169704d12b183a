package io.ballast.storage;

import java.util.List;

/**
 * The content of {@code volume.json}. {@code layers} is the layer chain, bottom first and the
 * writable top layer last. {@code createdAt} is ISO-8601 text so the file needs no date module.
 * {@code snapshots} (absent in files written before snapshots existed: read as none) names the
 * frozen layer each snapshot ends at, oldest first.
 */
record VolumeMeta(
        int formatVersion,
        String name,
        String uuid,
        long sizeBytes,
        int blockSizeBytes,
        long regionSizeBytes,
        String createdAt,
        List<String> layers,
        List<SnapshotMeta> snapshots,
        boolean encrypted) {

    static final int FORMAT_VERSION = 1;

    /** Unencrypted (volume.json files from before encryption have no {@code encrypted}: false). */
    VolumeMeta(int formatVersion, String name, String uuid, long sizeBytes, int blockSizeBytes, long regionSizeBytes,
            String createdAt, List<String> layers, List<SnapshotMeta> snapshots) {
        this(formatVersion, name, uuid, sizeBytes, blockSizeBytes, regionSizeBytes, createdAt, layers, snapshots, false);
    }

    VolumeMeta {
        layers = List.copyOf(layers);
        snapshots = snapshots == null ? List.of() : List.copyOf(snapshots);
    }

    /**
     * One snapshot: its view is the chain from the bottom up to and including {@code layer}.
     * {@code clonedFrom} is not here: a clone is an ordinary volume whose lower layers are hard links.
     */
    record SnapshotMeta(String uuid, String layer, String createdAt) {}

    String topLayer() {
        return layers.getLast();
    }

    VolumeMeta withSizeBytes(long newSizeBytes) {
        return new VolumeMeta(formatVersion, name, uuid, newSizeBytes, blockSizeBytes, regionSizeBytes, createdAt, layers,
                snapshots, encrypted);
    }

    VolumeMeta withChain(List<String> newLayers, List<SnapshotMeta> newSnapshots) {
        return new VolumeMeta(formatVersion, name, uuid, sizeBytes, blockSizeBytes, regionSizeBytes, createdAt, newLayers,
                newSnapshots, encrypted);
    }

    java.util.Optional<SnapshotMeta> snapshot(String snapshotUuid) {
        return snapshots.stream().filter(s -> s.uuid().equals(snapshotUuid)).findFirst();
    }
}
