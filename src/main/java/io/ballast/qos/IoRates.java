package io.ballast.qos;

/**
 * A volume's client I/O over the last few seconds, as measured where its engine runs (docs/api.md,
 * "I/O rates"). READ and WRITE requests only: flushes, trims and write-zeroes move no payload.
 *
 * @param windowMs the time the rates are averaged over (about 5 s; less just after the volume was opened)
 */
public record IoRates(long readIops, long writeIops, long readBytesPerSec, long writeBytesPerSec, long windowMs) {
    public static final IoRates IDLE = new IoRates(0, 0, 0, 0, 0);
}
