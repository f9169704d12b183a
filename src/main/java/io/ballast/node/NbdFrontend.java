package io.ballast.node;

import io.ballast.control.NbdEndpoints;

/** The running NBD server as the node sees it: endpoints for URIs and connection counts, plus close. */
public interface NbdFrontend extends NbdEndpoints, AutoCloseable {
    @Override
    void close();
}
