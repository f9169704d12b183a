package io.ballast.qos;

/** A clock the test moves: sleeping advances it by the time asked, at once. */
final class FakeClock implements QosClock {
    long nowNs = 1_000_000_000L;
    long sleptNs;

    @Override
    public long nanoTime() {
        return nowNs;
    }

    @Override
    public void sleepNs(long ns) {
        nowNs += ns;
        sleptNs += ns;
    }

    void advanceMs(long ms) {
        nowNs += ms * 1_000_000;
    }
}
