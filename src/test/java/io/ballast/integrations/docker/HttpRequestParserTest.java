package io.ballast.integrations.docker;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.ballast.integrations.docker.HttpRequestParser.HttpProtocolException;
import io.ballast.integrations.docker.HttpRequestParser.HttpRequest;
import java.io.ByteArrayInputStream;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

class HttpRequestParserTest {
    static InputStream in(String s) {
        return new ByteArrayInputStream(s.getBytes(StandardCharsets.ISO_8859_1));
    }

    static int statusOf(String raw) {
        try {
            HttpRequestParser.read(in(raw));
        } catch (HttpProtocolException e) {
            return e.status();
        } catch (java.io.IOException e) {
            throw new AssertionError(e);
        }
        throw new AssertionError("accepted: " + raw);
    }

    @Test
    void dockersRequestWithContentLengthThenAnotherOnTheSameStream() throws Exception {
        String body = "{\"Name\":\"pg\"}";
        InputStream s = in("POST /VolumeDriver.Get HTTP/1.1\r\nHost: plugin\r\nUser-Agent: Go-http-client/1.1\r\n"
                + "Content-Length: " + body.length() + "\r\nAccept: application/vnd.docker.plugins.v1.2+json\r\n"
                + "Content-Type: application/vnd.docker.plugins.v1.2+json\r\nAccept-Encoding: gzip\r\n\r\n" + body
                + "POST /Plugin.Activate HTTP/1.1\r\nConnection: close\r\n\r\n");
        HttpRequest r = HttpRequestParser.read(s);
        assertThat(r.method()).isEqualTo("POST");
        assertThat(r.target()).isEqualTo("/VolumeDriver.Get");
        assertThat(new String(r.body(), StandardCharsets.UTF_8)).isEqualTo(body);
        assertThat(r.keepAlive()).isTrue();
        HttpRequest r2 = HttpRequestParser.read(s);
        assertThat(r2.target()).isEqualTo("/Plugin.Activate");
        assertThat(r2.body()).isEmpty();
        assertThat(r2.keepAlive()).isFalse();
        assertThat(HttpRequestParser.read(s)).isNull();
    }

    @Test
    void chunkedBody() throws Exception {
        HttpRequest r = HttpRequestParser.read(in("POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                + "5\r\n{\"Nam\r\n8;ext=1\r\ne\":\"pg\"}\r\n0\r\nTrailer: x\r\n\r\n"));
        assertThat(new String(r.body(), StandardCharsets.UTF_8)).isEqualTo("{\"Name\":\"pg\"}");
    }

    @Test
    void http10ClosesUnlessKeepAlive() throws Exception {
        assertThat(HttpRequestParser.read(in("POST /x HTTP/1.0\r\n\r\n")).keepAlive()).isFalse();
        assertThat(HttpRequestParser.read(in("POST /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")).keepAlive()).isTrue();
    }

    @Test
    void malformedInputIsRefusedWithAStatus() {
        assertThat(statusOf("GARBAGE\r\n\r\n")).isEqualTo(400);
        assertThat(statusOf("post /x HTTP/1.1\r\n\r\n")).isEqualTo(400);
        assertThat(statusOf("POST x HTTP/1.1\r\n\r\n")).isEqualTo(400);
        assertThat(statusOf("POST /x HTTP/2.0\r\n\r\n")).isEqualTo(505);
        assertThat(statusOf("POST /x HTTP/1.1\r\nNoColon\r\n\r\n")).isEqualTo(400);
        assertThat(statusOf("POST /x HTTP/1.1\r\nContent-Length: -1\r\n\r\n")).isEqualTo(400);
        assertThat(statusOf("POST /x HTTP/1.1\r\nContent-Length: +5\r\n\r\nabcde")).isEqualTo(400);
        assertThat(statusOf("POST /x HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nabcde")).isEqualTo(400);
        assertThat(statusOf("POST /x HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n")).isEqualTo(413);
        assertThat(statusOf("POST /x HTTP/1.1\r\nContent-Length: 10\r\n\r\nshort")).isEqualTo(400);
        assertThat(statusOf("POST /x HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n")).isEqualTo(400);
        assertThat(statusOf("POST /x HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n")).isEqualTo(501);
        assertThat(statusOf("POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")).isEqualTo(400);
        assertThat(statusOf("POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n")).isEqualTo(400);
        assertThat(statusOf("POST /x HTTP/1.1\r\nHost: y")).isEqualTo(400);
        assertThat(statusOf("POST /" + "a".repeat(HttpRequestParser.MAX_LINE_BYTES) + " HTTP/1.1\r\n\r\n")).isEqualTo(431);
        assertThat(statusOf("POST /x HTTP/1.1\r\n" + "A: b\r\n".repeat(HttpRequestParser.MAX_HEADERS + 1) + "\r\n"))
                .isEqualTo(431);
    }

    @Test
    void emptyStreamIsACleanEnd() throws Exception {
        assertThat(HttpRequestParser.read(in(""))).isNull();
    }
}
