package io.ballast.node.logging;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.FileAppender;
import ch.qos.logback.core.encoder.LayoutWrappingEncoder;
import java.nio.file.Path;
import org.slf4j.LoggerFactory;

/**
 * logback.xml gives everyone JSON lines on stderr at WARN (what the CLI wants). A daemon calls
 * {@link #daemon} to log INFO and also append to its data directory's log file.
 */
public final class LogSetup {
    private LogSetup() {}

    /** The log file is created 0600 (and one an older version made 0644 is closed): logs name volumes, paths and peers. */
    public static void daemon(Path logFile) {
        if (!(LoggerFactory.getILoggerFactory() instanceof LoggerContext ctx)) {
            return;
        }
        try {
            if (!java.nio.file.Files.exists(logFile)) {
                java.nio.file.Files.createFile(logFile, io.ballast.common.OwnerOnly.file());
            }
            io.ballast.common.OwnerOnly.restrictFile(logFile);
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException("cannot create the log file " + logFile, e);
        }
        Logger root = ctx.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME);
        root.setLevel(Level.INFO);
        JsonLayout layout = new JsonLayout();
        layout.setContext(ctx);
        layout.start();
        LayoutWrappingEncoder<ILoggingEvent> encoder = new LayoutWrappingEncoder<>();
        encoder.setContext(ctx);
        encoder.setLayout(layout);
        encoder.start();
        FileAppender<ILoggingEvent> file = new FileAppender<>();
        file.setContext(ctx);
        file.setName("daemon-file");
        file.setFile(logFile.toString());
        file.setAppend(true);
        file.setEncoder(encoder);
        file.start();
        root.addAppender(file);
    }
}
