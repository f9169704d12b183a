package io.ballast.node;

import io.ballast.storage.PoolStats;

/**
 * What a running node tells about itself: written to DATA/node.json (so tests and the CLI find the
 * actual addresses when ports were 0) and served by {@code GET /v1/node} with pool stats added.
 *
 * @param pool null in node.json, filled in by the API
 */
public record NodeInfo(
        String nodeId,
        long pid,
        String state,
        String dataDir,
        String apiUrl,
        String nbdTcp,
        String nbdSocket,
        String startedAt,
        String version,
        PoolStats pool) {}
