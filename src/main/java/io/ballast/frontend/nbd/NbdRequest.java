package io.ballast.frontend.nbd;

/**
 * A decoded transmission-phase request header. Lengths are unsigned 32-bit on the wire and kept
 * in a long; offsets are unsigned 64-bit and may be negative here when above 2^63 (out of range
 * for any device, which the range check catches).
 */
public sealed interface NbdRequest {
    long cookie();

    /** NBD_CMD_READ. FUA is accepted and ignored, as the spec allows for every command. */
    record Read(long cookie, long offsetBytes, long lengthBytes) implements NbdRequest {}

    /** NBD_CMD_WRITE; {@code lengthBytes} of payload follow the header on the wire. */
    record Write(long cookie, long offsetBytes, long lengthBytes, boolean fua) implements NbdRequest {}

    record Flush(long cookie) implements NbdRequest {}

    record Trim(long cookie, long offsetBytes, long lengthBytes, boolean fua) implements NbdRequest {}

    /** NBD_CMD_WRITE_ZEROES; NO_HOLE forbids deallocation; FAST_ZERO is always honourable here. */
    record WriteZeroes(long cookie, long offsetBytes, long lengthBytes, boolean fua, boolean noHole,
                       boolean fastZero) implements NbdRequest {}

    /** NBD_CMD_DISC: finish in-flight requests, then close. */
    record Disconnect(long cookie) implements NbdRequest {}

    /**
     * A well-framed request we refuse (unknown command, unadvertised command, unknown flag bits):
     * answered with {@code errno}. {@code payloadBytes} is non-zero only for a refused WRITE, whose
     * data must still be consumed to keep the stream in sync.
     */
    record Rejected(long cookie, int type, int errno, String reason, long payloadBytes) implements NbdRequest {}
}
