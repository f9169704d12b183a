package io.ballast.cli;

import com.fasterxml.jackson.databind.JsonNode;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

/**
 * Reads a list endpoint page by page (docs/api.md, "Lists"): with a limit the user asked for, that one
 * page (and the token to go on, on stderr); without, every page of {@link #PAGE_SIZE} following the
 * {@code continue} tokens, each handed on as it arrives so a long list prints as it comes.
 */
final class Pages {
    /** What the CLI asks per page when the user asked for everything. */
    static final int PAGE_SIZE = 500;

    private Pages() {}

    /** The revision the listing was read at (watch from there), and the token of the next page (null: none). */
    record Listed(long revision, String next) {}

    /** A query string of the non-null {@code key, value} pairs, starting with '?' (empty when none). */
    static String query(String... keyValues) {
        StringBuilder q = new StringBuilder();
        for (int i = 0; i + 1 < keyValues.length; i += 2) {
            if (keyValues[i + 1] != null) {
                q.append(q.isEmpty() ? '?' : '&').append(keyValues[i]).append('=')
                        .append(URLEncoder.encode(keyValues[i + 1], StandardCharsets.UTF_8));
            }
        }
        return q.toString();
    }

    /**
     * Calls {@code onPage} with the {@code field} array of each page of {@code path} (its query, if any,
     * already there). {@code limit} null: every page; else one page of that size from {@code continueToken}.
     */
    static Listed each(NodeClient client, String path, String field, Integer limit, String continueToken,
            Consumer<JsonNode> onPage) {
        return each(client, path, field, limit, continueToken, PAGE_SIZE, onPage);
    }

    /** {@link #each} asking {@code chunkSize} items per page when following every page. */
    static Listed each(NodeClient client, String path, String field, Integer limit, String continueToken, int chunkSize,
            Consumer<JsonNode> onPage) {
        String sep = path.contains("?") ? "&" : "?";
        String token = continueToken;
        long revision = -1;
        while (true) {
            String url = path + sep + "limit=" + (limit == null ? chunkSize : limit)
                    + (token == null ? "" : "&continue=" + URLEncoder.encode(token, StandardCharsets.UTF_8));
            JsonNode page = client.get(url);
            if (revision < 0) {
                revision = page.path("revision").asLong();
            }
            onPage.accept(page.path(field));
            token = page.hasNonNull("continue") ? page.path("continue").asText() : null;
            if (token == null || limit != null) {
                return new Listed(revision, token);
            }
        }
    }

    /** Every item of the list, in one array (JSON output). */
    static List<JsonNode> all(NodeClient client, String path, String field, Integer limit, String continueToken,
            Listed[] listed) {
        return all(client, path, field, limit, continueToken, PAGE_SIZE, listed);
    }

    static List<JsonNode> all(NodeClient client, String path, String field, Integer limit, String continueToken, int chunkSize,
            Listed[] listed) {
        List<JsonNode> out = new ArrayList<>();
        Listed l = each(client, path, field, limit, continueToken, chunkSize, page -> page.forEach(out::add));
        if (listed != null) {
            listed[0] = l;
        }
        return out;
    }
}
