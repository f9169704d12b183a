package io.ballast.storage;

/** A byte range of a volume: {@code [offsetBytes, offsetBytes + lengthBytes)}. */
public record Extent(long offsetBytes, long lengthBytes) {
    public Extent {
        if (offsetBytes < 0 || lengthBytes < 0) {
            throw new IllegalArgumentException("negative extent " + offsetBytes + "+" + lengthBytes);
        }
    }

    public long endBytes() {
        return offsetBytes + lengthBytes;
    }
}
