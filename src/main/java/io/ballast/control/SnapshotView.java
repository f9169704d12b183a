package io.ballast.control;

import java.util.List;

/**
 * A snapshot as the API shows it. {@code exclusiveBytes}: what deleting it would free on a replica
 * (blocks the volume overwrote since), measured on the answering node's replica when it holds one,
 * else 0. {@code nodeIds}: the replicas' nodes that hold it.
 */
public record SnapshotView(String volume, String name, String uuid, String createdAt, long sizeBytes, long exclusiveBytes,
        List<String> nodeIds, boolean readyToUse) {}
