package io.ballast.api.rest;

import static org.assertj.core.api.Assertions.assertThat;

import io.ballast.testing.InProcessNode;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The dashboard's files as a browser gets them: types, validators, redirects, and nothing outside ui/. */
class DashboardFilesTest {
    static final HttpClient HTTP = HttpClient.newBuilder().followRedirects(HttpClient.Redirect.NEVER).build();
    @TempDir
    static Path dir;
    static InProcessNode node;

    @BeforeAll
    static void start() throws Exception {
        node = new InProcessNode(dir.resolve("node"));
    }

    @AfterAll
    static void stop() {
        node.close();
    }

    static HttpResponse<String> get(String path, String... headers) throws Exception {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(node.url() + path)).timeout(Duration.ofSeconds(10));
        for (int i = 0; i < headers.length; i += 2) {
            b.header(headers[i], headers[i + 1]);
        }
        return HTTP.send(b.build(), HttpResponse.BodyHandlers.ofString());
    }

    @Test
    void indexAndModulesHaveTheirTypesAValidatorAndAPolicy() throws Exception {
        HttpResponse<String> index = get("/ui/");
        assertThat(index.statusCode()).isEqualTo(200);
        assertThat(index.headers().firstValue("Content-Type")).hasValue("text/html; charset=utf-8");
        assertThat(index.body()).contains("<script type=\"module\" src=\"app.js\">");
        assertThat(index.headers().firstValue("Cache-Control")).hasValue("no-cache");
        assertThat(index.headers().firstValue("X-Content-Type-Options")).hasValue("nosniff");
        assertThat(index.headers().firstValue("Content-Security-Policy").orElseThrow())
                .contains("default-src 'self'", "connect-src 'self'", "frame-ancestors 'none'");

        HttpResponse<String> app = get("/ui/app.js");
        assertThat(app.statusCode()).isEqualTo(200);
        assertThat(app.headers().firstValue("Content-Type")).hasValue("text/javascript; charset=utf-8");
        assertThat(get("/ui/style.css").headers().firstValue("Content-Type")).hasValue("text/css; charset=utf-8");
        assertThat(get("/ui/favicon.svg").headers().firstValue("Content-Type")).hasValue("image/svg+xml");

        String etag = app.headers().firstValue("ETag").orElseThrow();
        HttpResponse<String> again = get("/ui/app.js", "If-None-Match", etag);
        assertThat(again.statusCode()).isEqualTo(304);
        assertThat(again.body()).isEmpty();
    }

    @Test
    void theBareUiPathRedirectsSoRelativeModuleUrlsResolve() throws Exception {
        HttpResponse<String> r = get("/ui");
        assertThat(r.statusCode()).isEqualTo(308);
        assertThat(r.headers().firstValue("Location")).hasValue("/ui/");
    }

    @Test
    void noPathLeavesTheUiFolder() throws Exception {
        for (String path : new String[] {"/ui/..%2fpom.xml", "/ui/%2e%2e/logback.xml", "/ui/../logback.xml", "/ui/sub/app.js",
                "/ui/logback.xml", "/ui/app.js.map", "/ui/.hidden.js", "/ui/App.js", "/ui/nope.js"}) {
            HttpResponse<String> r = get(path);
            assertThat(r.statusCode()).as(path).isEqualTo(404);
            assertThat(r.body()).as(path).contains("\"code\":\"NOT_FOUND\"").doesNotContain("<configuration");
        }
        // a raw request line, as no client library would normalize it
        URI base = URI.create(node.url());
        try (Socket s = new Socket(base.getHost(), base.getPort())) {
            s.getOutputStream().write("GET /ui/../../../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                    .getBytes(StandardCharsets.US_ASCII));
            String answer = new String(s.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertThat(answer).startsWith("HTTP/1.1 404").doesNotContain("root:");
        }
    }

    @Test
    void onlyGetAndHeadAreServed() throws Exception {
        HttpResponse<String> r = HTTP.send(HttpRequest.newBuilder(URI.create(node.url() + "/ui/app.js"))
                .POST(HttpRequest.BodyPublishers.ofString("x")).build(), HttpResponse.BodyHandlers.ofString());
        assertThat(r.statusCode()).isEqualTo(405);
        assertThat(r.headers().firstValue("Allow")).hasValue("GET, HEAD");
        HttpResponse<String> head = HTTP.send(HttpRequest.newBuilder(URI.create(node.url() + "/ui/app.js"))
                .method("HEAD", HttpRequest.BodyPublishers.noBody()).build(), HttpResponse.BodyHandlers.ofString());
        assertThat(head.statusCode()).isEqualTo(200);
        assertThat(head.headers().firstValue("Content-Type")).hasValue("text/javascript; charset=utf-8");
    }
}
