package io.ballast.common;

/** Sleeping on control-plane threads, where an interrupt means the node is stopping. */
public final class Sleeps {
    private Sleeps() {}

    /** Sleeps {@code ms}; an interrupt keeps the flag set and fails the caller with UNAVAILABLE. */
    public static void sleepMs(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new BallastException(ErrorCode.UNAVAILABLE, "interrupted");
        }
    }
}
