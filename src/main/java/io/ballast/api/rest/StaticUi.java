package io.ballast.api.rest;

import java.io.IOException;
import java.io.InputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Pattern;

/**
 * The dashboard's files (docs/dashboard.md), read from the jar's {@code ui/} folder. Only flat names
 * of known types are served ({@code app.js}, {@code style.css}): a name with a slash, a dot-dot or an
 * unknown extension is simply not found, so no request can reach another resource of the jar or a
 * file of the host. The UI itself talks only to the REST API, from the browser.
 */
final class StaticUi {
    static final String ROOT = "ui/";

    /** A file name the dashboard may serve: letters, digits and dashes, then one known extension. */
    private static final Pattern NAME = Pattern.compile("[a-z0-9][a-z0-9-]{0,63}\\.(html|js|css|svg|png|ico)");

    private static final Map<String, String> TYPES = Map.of(
            "html", "text/html; charset=utf-8",
            "js", "text/javascript; charset=utf-8",
            "css", "text/css; charset=utf-8",
            "svg", "image/svg+xml",
            "png", "image/png",
            "ico", "image/x-icon");

    /**
     * Same origin only, no inline script (the pages build their DOM from modules), no framing.
     * {@code connect-src 'self'}: the browser talks to this node's API and nothing else.
     */
    static final String CONTENT_SECURITY_POLICY = "default-src 'self'; script-src 'self'; style-src 'self'; "
            + "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

    /** One served file: its bytes, type and a strong validator. */
    record File(byte[] bytes, String contentType, String etag) {}

    private final ClassLoader loader;
    private final Map<String, Optional<File>> cache = new ConcurrentHashMap<>();

    StaticUi(ClassLoader loader) {
        this.loader = loader;
    }

    /**
     * The file for the path segments after {@code /ui} (none: the index page); empty when there is no
     * such file or the name is not one the dashboard serves.
     */
    Optional<File> find(String[] rest) {
        String name;
        if (rest.length == 0) {
            name = "index.html";
        } else if (rest.length == 1 && NAME.matcher(rest[0]).matches()) {
            name = rest[0];
        } else {
            return Optional.empty();
        }
        return cache.computeIfAbsent(name, this::load);
    }

    private Optional<File> load(String name) {
        try (InputStream in = loader.getResourceAsStream(ROOT + name)) {
            if (in == null) {
                return Optional.empty();
            }
            byte[] bytes = in.readAllBytes();
            String ext = name.substring(name.lastIndexOf('.') + 1);
            return Optional.of(new File(bytes, TYPES.get(ext), etagOf(bytes)));
        } catch (IOException e) {
            return Optional.empty();
        }
    }

    private static String etagOf(byte[] bytes) {
        try {
            byte[] d = MessageDigest.getInstance("SHA-256").digest(bytes);
            return "\"" + HexFormat.of().formatHex(d, 0, 12) + "\"";
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
