package io.ballast.storage;

/**
 * What opening a volume found. {@code uncleanShutdown} is true when the clean-shutdown marker was
 * missing; {@code dirtyRegions} regions were re-checksummed ({@code blocksRechecked} present blocks).
 */
public record RecoveryReport(boolean uncleanShutdown, int dirtyRegions, long blocksRechecked, long durationMs) {
    static final RecoveryReport CLEAN = new RecoveryReport(false, 0, 0, 0);
}
