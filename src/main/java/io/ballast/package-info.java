/**
 * Ballast: replicated block storage for stateful containers.
 *
 * <p>Packages follow the architecture in docs/architecture.md:
 * {@code control} (cluster metadata and placement), {@code storage} (the on-disk replica format and
 * the node's pool), {@code replication} (volume engine and replica service), {@code frontend.nbd}
 * (the NBD server), {@code attach} (volume to mounted file system), {@code api.rest} (the node's
 * REST API), {@code node} (the daemon's lifecycle), {@code cli} (the {@code ballast} command),
 * {@code metrics}, and {@code common} (errors, sizes, names shared by all).
 */
package io.ballast;
