package io.ballast.storage;

import java.time.Instant;

/** What the pool knows of one stored volume. {@code allocatedBytes} counts blocks that hold data. */
public record VolumeInfo(String name, String uuid, long sizeBytes, long allocatedBytes, Instant createdAt) {}
