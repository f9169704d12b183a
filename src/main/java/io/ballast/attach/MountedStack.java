package io.ballast.attach;

import java.nio.file.Path;

/**
 * What the agent built to mount a volume, bottom to top: the NBD client (nbdfuse process with its
 * fuse directory, or a kernel /dev/nbdN), the block device the file system sits on, the mount.
 *
 * @param fusePid null for the kernel client
 * @param fuseDir null for the kernel client
 */
public record MountedStack(String method, Path mountDir, String device, Long fusePid, Path fuseDir, boolean formatted) {}
