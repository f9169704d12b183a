package io.ballast.integrations.docker;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.ballast.common.BallastException;
import io.ballast.common.Json;
import java.io.IOException;
import java.io.UncheckedIOException;

/** Bytes to request records and records to bytes. Pure: no sockets, no volume logic. */
public final class PluginCodec {
    private static final ObjectMapper JSON = Json.newMapper()
            .configure(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES, false);

    private PluginCodec() {}

    /** An empty body (Docker sends none for Activate, List and Capabilities) reads as all-null. */
    public static PluginMessages.Request decodeRequest(byte[] body) {
        if (body == null || body.length == 0 || isBlank(body)) {
            return new PluginMessages.Request(null, null, null);
        }
        try {
            PluginMessages.Request r = JSON.readValue(body, PluginMessages.Request.class);
            return r == null ? new PluginMessages.Request(null, null, null) : r;
        } catch (IOException e) {
            String detail = e instanceof JsonProcessingException j ? j.getOriginalMessage() : e.getMessage();
            throw BallastException.invalid("malformed plugin request body: " + detail);
        }
    }

    public static byte[] encode(Object response) {
        try {
            return JSON.writeValueAsBytes(response);
        } catch (JsonProcessingException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static boolean isBlank(byte[] body) {
        for (byte b : body) {
            if (b != ' ' && b != '\n' && b != '\r' && b != '\t') {
                return false;
            }
        }
        return true;
    }
}
