package io.ballast.common;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.ballast.common.BallastException;
import io.ballast.common.ErrorCode;
import io.ballast.common.Json;

/**
 * The one place where errors become HTTP: status per {@link ErrorCode}, and the body
 * {@code {"error": {"code": "...", "message": "..."}}}. Codes other than ErrorCode names are used
 * only for HTTP-level failures (METHOD_NOT_ALLOWED, PAYLOAD_TOO_LARGE).
 */
public final class HttpErrors {
    private static final ObjectMapper JSON = Json.newMapper();

    private HttpErrors() {}

    public static int status(ErrorCode code) {
        return switch (code) {
            case NOT_FOUND -> 404;
            case ALREADY_EXISTS, CONFLICT -> 409;
            case INVALID_ARGUMENT, OUT_OF_RANGE -> 400;
            case EXPIRED -> 410;
            case NO_SPACE -> 507;
            case UNAVAILABLE -> 503;
            case CHECKSUM_MISMATCH, IO_ERROR, INTERNAL -> 500;
        };
    }

    /** Inverse for clients: the ErrorCode named in a body, or one guessed from the status. */
    public static ErrorCode codeOf(String name, int status) {
        if (name != null) {
            try {
                return ErrorCode.valueOf(name);
            } catch (IllegalArgumentException ignored) {
                // an HTTP-level code; fall through to the status
            }
        }
        return switch (status) {
            case 400, 403, 405, 413 -> ErrorCode.INVALID_ARGUMENT;
            case 404 -> ErrorCode.NOT_FOUND;
            case 410 -> ErrorCode.EXPIRED;
            case 409 -> ErrorCode.CONFLICT;
            case 429, 503 -> ErrorCode.UNAVAILABLE;
            case 507 -> ErrorCode.NO_SPACE;
            default -> ErrorCode.INTERNAL;
        };
    }

    public record Problem(int status, byte[] body) {}

    public static Problem of(BallastException e) {
        return of(status(e.code()), e.code().name(), e.getMessage());
    }

    public static Problem of(int status, String code, String message) {
        ObjectNode root = JSON.createObjectNode();
        ObjectNode error = root.putObject("error");
        error.put("code", code);
        error.put("message", message);
        try {
            return new Problem(status, JSON.writeValueAsBytes(root));
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }
}
