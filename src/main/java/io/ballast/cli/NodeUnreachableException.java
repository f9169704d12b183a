package io.ballast.cli;

/** The node did not answer at all (connection refused, timeout): exit code 6. */
public final class NodeUnreachableException extends RuntimeException {
    public NodeUnreachableException(String url, Throwable cause) {
        super("cannot reach Ballast node at " + url + ": is it running? try `ballast up`", cause);
    }
}
