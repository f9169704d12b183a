package io.ballast.replication.wire;

/**
 * Bytes on the replication port that do not follow the wire format (bad magic or version, unknown
 * type, a length out of bounds, a truncated or over-long field). The connection cannot continue:
 * framing is lost. Nothing of the offending frame has been applied.
 */
public final class WireProtocolException extends RuntimeException {
    public WireProtocolException(String message) {
        super(message);
    }
}
