package io.ballast.qos;

/** The time and the waiting of the limiters: a seam so unit tests drive time by hand. */
public interface QosClock {

    long nanoTime();

    /** Blocks the caller for about {@code ns} (a test clock just advances its time). */
    void sleepNs(long ns) throws InterruptedException;

    QosClock SYSTEM = new QosClock() {
        @Override
        public long nanoTime() {
            return System.nanoTime();
        }

        @Override
        public void sleepNs(long ns) throws InterruptedException {
            Thread.sleep(ns / 1_000_000, (int) (ns % 1_000_000));
        }
    };
}
