package io.ballast.integrations.docker;

import io.ballast.common.BallastException;
import io.ballast.common.ErrorCode;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The one place where errors become Docker's {@code {"Err": "..."}}. Docker prints {@code Err}
 * to the user (e.g. {@code docker volume create} fails with it), so user errors keep their message
 * as written; system faults and bugs are logged and reported with a hint to the node log.
 *
 * <p>HTTP status: errors of the plugin protocol itself (bad JSON, unknown endpoint, wrong method)
 * get 4xx from the transport; every error of a valid call is answered with 200 and {@code Err},
 * which Docker's volume driver client turns into exactly that message.
 */
public final class DockerErrors {
    private static final Logger log = LoggerFactory.getLogger(DockerErrors.class);

    private DockerErrors() {}

    /** An error of the plugin protocol itself (HTTP framing, endpoint, method); the transport sends it with a 4xx. */
    public static PluginMessages.ErrorResponse protocol(String message) {
        return new PluginMessages.ErrorResponse("ballast: " + message);
    }

    public static PluginMessages.ErrorResponse of(Throwable t) {
        if (t instanceof BallastException e) {
            ErrorCode code = e.code();
            if (code.isSystemFault()) {
                log.atWarn().addKeyValue("code", code.name()).log("docker plugin call failed: {}", e.getMessage());
                return new PluginMessages.ErrorResponse("ballast: " + e.getMessage() + " (" + code.name()
                        + "; see the Ballast node log)");
            }
            return new PluginMessages.ErrorResponse("ballast: " + e.getMessage());
        }
        log.atError().setCause(t).log("docker plugin call failed with an unexpected error");
        return new PluginMessages.ErrorResponse("ballast: internal error (" + t
                + "); see the Ballast node log");
    }
}
