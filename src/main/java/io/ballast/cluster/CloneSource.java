package io.ballast.cluster;

/**
 * Where a clone's data comes from: on the nodes that hold the snapshot its replica's storage is a
 * thin clone of it (hard links of the frozen layers); its other replicas start out of sync and are
 * rebuilt from those.
 */
public record CloneSource(String cloneVolume, String cloneUuid, String sourceVolume, String sourceVolumeUuid, String snapshot,
        String snapshotUuid) {}
