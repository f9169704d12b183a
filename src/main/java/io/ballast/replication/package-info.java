/**
 * Synchronous replication: the volume engine and the replica service. Empty until the replication
 * issue; the single-node foundation serves volumes straight from {@link io.ballast.storage.StoragePool}.
 */
package io.ballast.replication;
