package io.ballast.api.rest;

/** What the API asks of the node it runs in, kept apart so the API does not depend on the daemon class. */
public interface NodeStatusSource {

    /** A JSON-serialisable description of the node for {@code GET /v1/node}. */
    Object nodeInfo();

    /** True when the node serves requests; {@code /healthz} answers 503 otherwise. */
    boolean healthy();

    /** {@code POST /v1/node/pools}: opens another pool directory on this running node. */
    default Object addPool(String name, String dir) {
        throw io.ballast.common.BallastException.invalid("this node's storage has no pool directories to add to");
    }

    /** {@code DELETE /v1/node/pools/{name}}: moves the pool's replicas to other nodes, then lets go of it. */
    default Object removePool(String name) {
        throw io.ballast.common.BallastException.invalid("this node's storage has no pool directories to remove");
    }
}
