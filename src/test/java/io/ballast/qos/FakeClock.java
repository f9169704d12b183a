package io.ballast.qos;

/** A clock the test moves: sleeping advances it by the time asked, at once. */
public final class FakeClock implements QosClock {
    public long nowNs = 1_000_000_000L;
    long sleptNs;
    /** What happens while a caller sleeps (e.g. clients doing I/O on the node meanwhile). */
    public Runnable whileSleeping = () -> {};

    @Override
    public long nanoTime() {
        return nowNs;
    }

    @Override
    public void sleepNs(long ns) {
        nowNs += ns;
        sleptNs += ns;
        whileSleeping.run();
    }

    void advanceMs(long ms) {
        nowNs += ms * 1_000_000;
    }
}
