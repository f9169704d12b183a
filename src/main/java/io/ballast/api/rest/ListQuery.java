package io.ballast.api.rest;

import com.fasterxml.jackson.databind.JsonNode;
import io.ballast.common.BallastException;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.function.Function;

/**
 * The paging and filter parameters of a list endpoint (docs/api.md, "Lists"): {@code limit}, the opaque
 * {@code continue} token of the previous page, and the endpoint's filters. The token carries the list it
 * belongs to, its filters, the last key answered and the revision the listing started at; a token of
 * another list or other filters, or one that does not decode, is 400, one whose revision the server no
 * longer keeps changes for is 410 (checked by the caller, which knows the revisions).
 */
final class ListQuery {
    /** The largest page a client may ask for; without {@code limit} a list is answered whole, as before. */
    static final int MAX_LIMIT = 1000;

    private static final String LIMIT = "limit";
    private static final String CONTINUE = "continue";

    final String list;
    /** 0: no limit. */
    final int limit;
    /** The key after which this page starts; null: from the first. */
    final String afterKey;
    /** The revision the listing started at (the first page's); -1 on a first page. */
    final long startRevision;
    final Map<String, String> filters;

    private ListQuery(String list, int limit, String afterKey, long startRevision, Map<String, String> filters) {
        this.list = list;
        this.limit = limit;
        this.afterKey = afterKey;
        this.startRevision = startRevision;
        this.filters = filters;
    }

    /**
     * Reads {@code limit}, {@code continue} and the filters named in {@code filterNames} (other query
     * parameters are the endpoint's business) from {@code query}.
     */
    static ListQuery of(String list, Map<String, String> query, Set<String> filterNames) {
        int limit = 0;
        String l = query.get(LIMIT);
        if (l != null) {
            try {
                limit = Integer.parseInt(l.strip());
            } catch (NumberFormatException e) {
                limit = -1;
            }
            if (limit < 1 || limit > MAX_LIMIT) {
                throw BallastException.invalid("query parameter 'limit' must be a whole number from 1 to " + MAX_LIMIT
                        + ", got '" + l + "'");
            }
        }
        Map<String, String> filters = new TreeMap<>();
        for (String f : filterNames) {
            String v = query.get(f);
            if (v != null) {
                if (v.isBlank()) {
                    throw BallastException.invalid("query parameter '" + f + "' is empty; give a value or leave it out");
                }
                filters.put(f, v);
            }
        }
        String token = query.get(CONTINUE);
        if (token == null) {
            return new ListQuery(list, limit, null, -1, filters);
        }
        Token t = Token.decode(token);
        if (!t.list().equals(list) || !t.filters().equals(filters)) {
            throw BallastException.invalid("this continue token belongs to " + t.list()
                    + (t.filters().isEmpty() ? "" : " with filters " + t.filters()) + ", not to " + list
                    + (filters.isEmpty() ? "" : " with filters " + filters) + "; ask for the next page with the same path and filters"
                    + " as the page that gave the token");
        }
        return new ListQuery(list, limit, t.afterKey(), t.revision(), filters);
    }

    String filter(String name) {
        return filters.get(name);
    }

    boolean firstPage() {
        return startRevision < 0;
    }

    /** The revision to put in the next token: the listing's start, which a whole sequence of pages keeps. */
    long listingRevision(long pageRevision) {
        return firstPage() ? pageRevision : startRevision;
    }

    /**
     * An answer {@code {field: items, "revision": R, "continue": T}}; {@code lastKey} null when this is
     * the last page (no {@code continue}). {@code extra} fields come after the list.
     */
    Map<String, Object> answer(String field, List<?> items, String lastKey, long pageRevision, Map<String, Object> extra) {
        Map<String, Object> out = new LinkedHashMap<>();
        out.put(field, items);
        if (extra != null) {
            out.putAll(extra);
        }
        out.put("revision", pageRevision);
        if (lastKey != null) {
            out.put(CONTINUE, new Token(list, filters, lastKey, listingRevision(pageRevision)).encode());
        }
        return out;
    }

    /** One page of an in-memory list: the items after the cursor in key order, and the last key when more follow. */
    record Slice<T>(List<T> items, String lastKey) {}

    /** Pages {@code all} (any order; sorted here by {@code key}) for lists that are small enough to read whole. */
    <T> Slice<T> slice(List<T> all, Function<T, String> key) {
        List<T> sorted = new ArrayList<>(all.size());
        for (T t : all) {
            if (afterKey == null || key.apply(t).compareTo(afterKey) > 0) {
                sorted.add(t);
            }
        }
        sorted.sort(java.util.Comparator.comparing(key));
        if (limit == 0 || sorted.size() <= limit) {
            return new Slice<>(sorted, null);
        }
        List<T> page = List.copyOf(sorted.subList(0, limit));
        return new Slice<>(page, key.apply(page.getLast()));
    }

    /** The token's content: base64url of a small JSON object, opaque to clients. */
    record Token(String list, Map<String, String> filters, String afterKey, long revision) {
        String encode() {
            Map<String, Object> j = new LinkedHashMap<>();
            j.put("v", 1);
            j.put("l", list);
            j.put("f", filters);
            j.put("k", afterKey);
            j.put("r", revision);
            try {
                return Base64.getUrlEncoder().withoutPadding().encodeToString(RestServer.JSON.writeValueAsBytes(j));
            } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
                throw new IllegalStateException(e);
            }
        }

        static Token decode(String token) {
            try {
                JsonNode j = RestServer.JSON.readTree(Base64.getUrlDecoder().decode(token.strip()));
                if (j == null || j.path("v").asInt() != 1 || !j.path("l").isTextual() || !j.path("k").isTextual()
                        || !j.path("r").canConvertToLong() || j.path("r").asLong() < 0 || !j.path("f").isObject()) {
                    throw new IllegalArgumentException("fields");
                }
                Map<String, String> f = new TreeMap<>();
                j.path("f").properties().forEach(e -> f.put(e.getKey(), e.getValue().asText()));
                return new Token(j.path("l").asText(), f, j.path("k").asText(), j.path("r").asLong());
            } catch (IllegalArgumentException | java.io.IOException e) {
                throw BallastException.invalid("query parameter 'continue' is not a token this API gave out; pass the"
                        + " 'continue' value of the previous page unchanged, or leave it out to start from the first page");
            }
        }
    }
}
