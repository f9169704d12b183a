package io.ballast.api.rest;

/** What the API asks of the node it runs in, kept apart so the API does not depend on the daemon class. */
public interface NodeStatusSource {

    /** A JSON-serialisable description of the node for {@code GET /v1/node}. */
    Object nodeInfo();

    /** True when the node serves requests; {@code /healthz} answers 503 otherwise. */
    boolean healthy();
}
