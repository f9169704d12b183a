package io.ballast.attach;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/**
 * The one door to external programs (nbdfuse, losetup, blkid, mkfs.ext4, mount, umount,
 * fusermount3, nbd-client). Tests replace it to script failures at any step.
 */
public interface CommandRunner {

    /** Runs a command to completion. A timeout or a failure to start yields exit code -1 and a message in stderr. */
    CommandResult run(List<String> command, Duration timeout);

    /** Starts a long-running child (nbdfuse) with stdout and stderr appended to {@code logFile}. */
    long startBackground(List<String> command, Path logFile);

    /** True while the process with this pid runs. */
    boolean isAlive(long pid);

    /** SIGTERM, then SIGKILL after {@code grace}. */
    void terminate(long pid, Duration grace);

    /** True when the program is on the PATH. */
    boolean isInstalled(String program);

    record CommandResult(List<String> command, int exitCode, String stdout, String stderr) {
        public boolean ok() {
            return exitCode == 0;
        }

        /** A one-line description for error messages: the command and what it said. */
        public String describe() {
            String said = stderr.isBlank() ? stdout.strip() : stderr.strip();
            return "`" + String.join(" ", command) + "` exited with " + exitCode
                    + (said.isEmpty() ? "" : ": " + said);
        }
    }
}
