package io.ballast.api.rest;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.ballast.cli.CliRunner;
import io.ballast.testing.NbdBlockClient;
import io.ballast.testing.NodeProcess;
import io.ballast.testing.Requirements;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.function.Function;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.openqa.selenium.By;
import org.openqa.selenium.JavascriptExecutor;
import org.openqa.selenium.OutputType;
import org.openqa.selenium.TakesScreenshot;
import org.openqa.selenium.WebDriver;
import org.openqa.selenium.WebElement;
import org.openqa.selenium.chrome.ChromeDriver;
import org.openqa.selenium.chrome.ChromeDriverService;
import org.openqa.selenium.chrome.ChromeOptions;
import org.openqa.selenium.support.ui.WebDriverWait;

/**
 * The dashboard in Debian's Chromium against a 3-process cluster (zones a, b, c): what an operator
 * sees and does. One cluster and one browser session for the class; the page is never reloaded
 * after it is first opened (a marker set in the page must survive), so every change shown comes
 * from the page's own polling. Screenshots go to target/dashboard-screenshots.
 */
@Tag("system")
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class DashboardBrowserSystemTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final HttpClient HTTP = HttpClient.newHttpClient();
    static final Path CHROMIUM = Path.of("/usr/bin/chromium");
    static final Path CHROMEDRIVER = Path.of("/usr/bin/chromedriver");
    static final Path SHOTS = Path.of("target/dashboard-screenshots");
    static final long MIB = 1L << 20;

    static Path dir;
    static final Map<String, NodeProcess> nodes = new java.util.LinkedHashMap<>();
    static WebDriver browser;
    static String ui; // node-a's API: the page's origin
    /** node-a's bootstrap admin token: the test's own API calls carry it, and the page is signed in with it. */
    static String adminToken;
    /** node-a's /metrics while it resyncs node-c: every series exposed, resync progress included. */
    static String metricsDuringResync;

    @BeforeAll
    static void startClusterAndBrowser() throws Exception {
        Requirements.require(Files.isExecutable(CHROMIUM) && Files.isExecutable(CHROMEDRIVER),
                "needs Debian's chromium and chromium-driver (apt-get install -y chromium chromium-driver; bin/install-deps)");
        dir = Files.createTempDirectory("dashboard-browser");
        Files.createDirectories(SHOTS);
        NodeProcess a = start("node-a", "a", null, null);
        ui = a.apiUrl();
        adminToken = a.adminToken();
        String token = Files.readString(dir.resolve("node-a/cluster-token")).strip();
        String join = a.apiUrl().replace("http://", "");
        joinRetryingOnce("node-b", "b", join, token);
        joinRetryingOnce("node-c", "c", join, token);
        // fast failure detection, so a killed node is down within seconds (not so fast that a loaded
        // machine's pauses make live nodes flap)
        send("PATCH", "/v1/cluster/settings", "{\"heartbeatMs\":300,\"suspectAfterMs\":1500,\"downAfterMs\":3000}");
        await("3 nodes up", () -> api("/v1/nodes").path("nodes").findValuesAsText("state").stream()
                .filter("up"::equals).count() == 3);
        browser = chrome();
    }

    /**
     * Under heavy load a joining node sometimes never finishes its join: its Raft log throws "Already
     * running a method" on every append from the leader (Ratis 3.1.3; 3.2.1, used since, skips such appends). The
     * dashboard is not what is tested there, so such a node is removed and joins again once, anew.
     */
    static void joinRetryingOnce(String id, String zone, String join, String token) throws Exception {
        try {
            start(id, zone, join, token);
        } catch (java.io.UncheckedIOException stuck) {
            String log = Files.readString(dir.resolve(id).resolve("process.out"));
            if (!log.contains("Already running a method")) {
                throw stuck;
            }
            System.err.println(id + " did not finish joining (Ratis \"Already running a method\"); removing it and joining again");
            HttpResponse<String> removed = raw("DELETE", "/v1/nodes/" + id + "?force=true", null);
            assertThat(removed.statusCode()).as(removed.body()).isIn(200, 404);
            deleteTree(dir.resolve(id));
            start(id, zone, join, token);
        }
    }

    static void deleteTree(Path root) throws IOException {
        try (var paths = Files.walk(root)) {
            for (Path p : paths.sorted(java.util.Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }

    static NodeProcess start(String id, String zone, String join, String token) {
        // a slow resync (1 MiB/s) keeps its progress on screen for a few seconds
        List<String> args = new ArrayList<>(List.of("--node-id", id, "--labels", "zone=" + zone, "--raft-listen", "127.0.0.1:0",
                "--resync-rate", "1MiB"));
        if (join != null) {
            args.addAll(List.of("--join", join, "--token", token));
        }
        try {
            NodeProcess n = NodeProcess.start(dir.resolve(id), args);
            synchronized (nodes) {
                nodes.put(id, n);
            }
            return n;
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    static WebDriver chrome() {
        ChromeOptions o = new ChromeOptions();
        o.setBinary(CHROMIUM.toString());
        o.addArguments("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,860",
                "--user-data-dir=" + dir.resolve("chromium-profile"));
        ChromeDriverService service = new ChromeDriverService.Builder().usingDriverExecutable(CHROMEDRIVER.toFile())
                .usingAnyFreePort().build();
        return new ChromeDriver(service, o);
    }

    @AfterAll
    static void stop() throws Exception {
        if (browser != null) {
            browser.quit();
        }
        for (NodeProcess n : nodes.values()) {
            if (n.isAlive()) {
                n.kill9(); // nothing to keep: no clean shutdown to wait for
            }
        }
        if (dir != null && !Boolean.getBoolean("keepDashboardTestData")) {
            deleteTree(dir); // nodes' data, logs and the browser profile (-DkeepDashboardTestData=true keeps them)
        }
    }

    // ---- the tests, in the order an operator would go ----

    @Test
    @Order(1)
    void withoutATokenThePageAsksToSignInAndAWrongTokenIsRefusedInTheDialog() throws Exception {
        browser.get(ui + "/ui/#/cluster");
        ((JavascriptExecutor) browser).executeScript("window.notReloaded = true");
        // the files come without a token; the API does not: the banner says so, and no node is shown
        waitFor("the sign-in banner", d -> "signin".equals(d.findElement(By.id("api-status")).getAttribute("data-state")));
        assertThat(text("#api-status")).contains("Sign in", "HTTP 401 UNAUTHENTICATED");
        assertThat(browser.findElements(By.cssSelector("#nodes tr[data-node]"))).isEmpty();
        shot("sign-in-needed");

        // the banner is redrawn on every poll: click whichever button is there now
        waitFor("the banner's sign-in button clicked", d -> {
            d.findElement(By.cssSelector("#api-status button")).click();
            return true;
        });
        type("#f-token", "bt1_000000000000_" + "0".repeat(64)); // well formed, but no such token
        browser.findElement(By.id("dialog-confirm")).click();
        waitFor("the refusal in the dialog", d -> !text(".dialog-error").isEmpty());
        assertThat(text(".dialog-error")).startsWith("Sign in: the API refused this (HTTP 401 UNAUTHENTICATED)");
        assertThat(sessionToken()).isNull(); // a refused token is not kept
        browser.findElement(By.id("dialog-cancel")).click();
        assertThat(browser.findElements(By.cssSelector("#nodes tr[data-node]"))).isEmpty();
        assertThat(text("#sign-in")).isEqualTo("Sign in");
    }

    @Test
    @Order(2)
    void signedInWithTheAdminTokenItListsTheNodesWithZonesAndAVolumeCreatedThroughThePage() throws Exception {
        browser.findElement(By.id("sign-in")).click(); // the header's button opens the same dialog
        type("#f-token", adminToken);
        browser.findElement(By.id("dialog-confirm")).click();
        waitFor("3 nodes on the cluster page", d -> d.findElements(By.cssSelector("#nodes tr[data-node]")).size() == 3);
        waitFor("the banner gone", d -> d.findElement(By.id("api-status")).getAttribute("data-state") == null);
        assertThat(browser.findElement(By.id("api-status")).isDisplayed()).isFalse();
        assertThat(text("#sign-in")).isEqualTo("Sign out");
        waitFor("the header names the node", d -> text("#served-by").equals("served by node-a"));
        // kept for this tab only
        assertThat(sessionToken()).isEqualTo(adminToken);
        assertThat(((JavascriptExecutor) browser).executeScript("return localStorage.length")).isEqualTo(0L);
        for (String id : List.of("node-a", "node-b", "node-c")) {
            waitFor(id + " up", d -> text("#nodes tr[data-node='" + id + "'] .state").startsWith("up"));
            assertThat(text("#nodes tr[data-node='" + id + "'] .zone")).isEqualTo(id.substring(5));
        }
        assertThat(text("#failure-detection")).contains("heartbeat", "300 ms", "down after", "3 s");
        shot("cluster");

        // a node action: cordon from the page, as the API then reports it, and back
        browser.findElement(By.cssSelector("#nodes tr[data-node='node-b'] button[data-action='cordon']")).click();
        waitFor("node-b cordoned", d -> text("#nodes tr[data-node='node-b'] .state").contains("cordoned"));
        assertThat(api("/v1/nodes/node-b").path("cordoned").asBoolean()).isTrue();
        browser.findElement(By.cssSelector("#nodes tr[data-node='node-b'] button[data-action='uncordon']")).click();
        waitFor("node-b uncordoned", d -> !text("#nodes tr[data-node='node-b'] .state").contains("cordoned"));

        browser.findElement(By.cssSelector("#nav a[data-page='volumes']")).click();
        // the page is drawn after the click returns
        waitFor("the volumes page", d -> !d.findElements(By.id("create-volume")).isEmpty());
        browser.findElement(By.id("create-volume")).click();
        type("#f-name", "db");
        type("#f-size", "32MiB");
        new org.openqa.selenium.support.ui.Select(browser.findElement(By.id("f-repl"))).selectByValue("3");
        browser.findElement(By.id("dialog-confirm")).click();
        waitFor("db listed healthy", d -> text("#volumes tr[data-volume='db'] .health").equals("healthy"));
        assertThat(text("#volumes tr[data-volume='db'] .size")).isEqualTo("32.0 MiB");
        assertThat(api("/v1/volumes/db").path("repl").asInt()).isEqualTo(3);
    }

    @Test
    @Order(3)
    void aNodeKilledWithSigkillTurnsDownAndTheVolumeDegradedThenItsResyncShowsProgress() throws Exception {
        String uri = send("POST", "/v1/volumes/db/attach", null).path("nbdUri").asText();
        try (NbdBlockClient c = NbdBlockClient.connect(uri)) {
            write(c, 0, 4 * MIB, 1);
        }
        browser.findElement(By.cssSelector("#nav a[data-page='topology']")).click();
        waitFor("db drawn on three nodes", d -> d.findElements(By.cssSelector("#topology g[data-volume='db'] circle.replica.ok")).size() == 3);

        nodes.get("node-c").kill9();
        waitFor("node-c down in the picture", d -> d.findElements(By.cssSelector("#topology g.node-down[data-node='node-c']")).size() == 1);
        // writes while node-c is away: node-c falls out of the in-sync set and will need them copied
        try (NbdBlockClient c = NbdBlockClient.connect(uri)) {
            write(c, 4 * MIB, 8 * MIB, 2);
        }
        waitFor("db marked degraded", d -> "degraded".equals(
                d.findElement(By.cssSelector("#topology g[data-volume='db']")).getAttribute("data-health")));
        assertThat(browser.findElements(By.cssSelector("#topology g[data-volume='db'] circle.replica.down[data-replica='node-c']"))).hasSize(1);
        shot("topology-degraded");

        browser.findElement(By.cssSelector("#nav a[data-page='volumes']")).click();
        waitFor("degraded in the table", d -> text("#volumes tr[data-volume='db'] .health").equals("degraded"));
        browser.findElement(By.cssSelector("#volumes tr[data-volume='db'] .name a")).click();
        waitFor("volume page", d -> !d.findElements(By.cssSelector("#replicas tr[data-replica='node-c']")).isEmpty());
        waitFor("node-c out of the in-sync set", d -> text("#replicas tr[data-replica='node-c'] .in-sync").startsWith("out of sync")
                && !text("#in-sync-set").contains("node-c"));

        nodes.get("node-c").restart();
        String progress = "#replicas tr[data-replica='node-c'] .progress";
        // node-a's /metrics while the resync runs: scraped on every check until the bar shows (the page shows
        // what it polled up to a second before, so a single scrape after seeing the bar may come too late)
        waitFor("resync progress on node-c's row", d -> {
            String scraped = scrape();
            if (metricsDuringResync == null && scraped.contains("ballast_engine_resync_rate_bytes_per_second{")) {
                metricsDuringResync = scraped;
            }
            if (d.findElements(By.cssSelector(progress)).isEmpty()) {
                return false;
            }
            if (metricsDuringResync == null) {
                metricsDuringResync = scraped;
            }
            return true;
        });
        long firstDone = Long.parseLong(browser.findElement(By.cssSelector(progress)).getAttribute("data-done"));
        long total = Long.parseLong(browser.findElement(By.cssSelector(progress)).getAttribute("data-total"));
        assertThat(total).isPositive();
        assertThat(text(progress)).contains("of").contains("ETA");
        shot("volume-resync");
        // the bar moves: a later poll shows more bytes done, or the resync finished (node-c back in sync)
        waitFor("resync moved on", d -> {
            List<WebElement> bars = d.findElements(By.cssSelector(progress));
            return bars.isEmpty() ? text("#in-sync-set").contains("node-c")
                    : Long.parseLong(bars.getFirst().getAttribute("data-done")) > firstDone;
        });
        waitFor("node-c back in sync and db healthy", d -> text("#in-sync-set").contains("node-c")
                && text("#replicas tr[data-replica='node-c'] .in-sync").equals("in sync")
                && !d.findElements(By.cssSelector("[data-volume='db'].health-healthy")).isEmpty());
        assertThat(((JavascriptExecutor) browser).executeScript("return window.notReloaded === true")).isEqualTo(true);
    }

    @Test
    @Order(4)
    void aResizeThroughThePageShowsInVolumeInspect() throws Exception {
        clickRedrawn("button[data-action='resize']");
        type("#f-size", "48MiB");
        browser.findElement(By.id("dialog-confirm")).click();
        waitFor("new size on the page", d -> text("#volume-size").equals("48.0 MiB"));
        CliRunner.Result inspect = cli().run("volume", "inspect", "db", "-o", "json");
        assertThat(inspect.exit()).as(inspect.err()).isZero();
        assertThat(JSON.readTree(inspect.out()).path("sizeBytes").asLong()).isEqualTo(48 * MIB);

        // what the page relies on when served by a node without the engine: ?follow=engine asks node-a
        String nodeB = nodes.get("node-b").apiUrl();
        HttpResponse<String> plain = HTTP.send(authorized(nodeB + "/v1/volumes/db").build(),
                HttpResponse.BodyHandlers.ofString());
        assertThat(JSON.readTree(plain.body()).path("engine").path("status").isNull()).isTrue();
        HttpResponse<String> followed = HTTP.send(authorized(nodeB + "/v1/volumes/db?follow=engine").build(),
                HttpResponse.BodyHandlers.ofString());
        JsonNode engine = JSON.readTree(followed.body()).path("engine");
        assertThat(engine.path("nodeId").asText()).isEqualTo("node-a");
        assertThat(engine.path("status").path("state").asText()).isEqualTo("serving");
        assertThat(engine.path("status").path("inSyncNodeIds")).hasSize(3);
        HttpResponse<String> bad = HTTP.send(authorized(nodeB + "/v1/volumes/db?follow=all").build(),
                HttpResponse.BodyHandlers.ofString());
        assertThat(bad.statusCode()).isEqualTo(400);
        assertThat(bad.body()).contains("query parameter 'follow' must be 'engine'");
    }

    @Test
    @Order(5)
    void aRefusedDeleteShowsTheApisMessage() throws Exception {
        clickRedrawn("button[data-action='delete']");
        assertThat(text("#dialog")).contains("cannot be undone"); // destructive: asks first
        browser.findElement(By.id("dialog-confirm")).click();
        waitFor("the refusal", d -> !text(".dialog-error").isEmpty());
        String shown = text(".dialog-error");
        HttpResponse<String> direct = raw("DELETE", "/v1/volumes/db", null);
        assertThat(direct.statusCode()).isEqualTo(409);
        String apiMessage = JSON.readTree(direct.body()).path("error").path("message").asText();
        assertThat(shown).contains("HTTP 409 CONFLICT").contains(apiMessage);
        shot("refused-delete");
        browser.findElement(By.id("dialog-cancel")).click();
        assertThat(api("/v1/volumes/db").path("name").asText()).isEqualTo("db"); // nothing was deleted
    }

    @Test
    @Order(6)
    void theEventsPageStreamsAndFilters() throws Exception {
        browser.findElement(By.cssSelector("#nav a[data-page='events']")).click();
        waitFor("events listed", d -> d.findElements(By.cssSelector("#events tr[data-seq]")).size() > 5);
        type("#event-subject", "node-c");
        // one script per check: the table is redrawn every second, so row by row WebDriver calls go stale
        waitFor("only node-c's events", d -> Boolean.TRUE.equals(((JavascriptExecutor) d).executeScript(
                "const rows = [...document.querySelectorAll('#events tr[data-seq]')];"
                        + "return rows.length > 0 && rows.every(r => r.cells[3].textContent.includes('node-c'));")));
        assertThat(text("#events")).contains("node-down"); // the kill -9, as the cluster recorded it
        // live: a cordon made elsewhere (the CLI) appears without any action in the page
        CliRunner.Result cordon = cli().run("node", "cordon", "node-c");
        assertThat(cordon.exit()).as(cordon.err()).isZero();
        waitFor("the cordon event", d -> text("#events").contains("node-cordoned"));
        shot("events");
        cli().run("node", "uncordon", "node-c");
    }

    @Test
    @Order(7)
    void attachFromThePageShowsIoRatesThenASnapshotTakenThereIsListedAndDetachAsksFirst() throws Exception {
        send("POST", "/v1/volumes?wait=ready", "{\"name\":\"web\",\"size\":\"16MiB\",\"repl\":3}");
        browser.findElement(By.cssSelector("#nav a[data-page='volumes']")).click();
        String row = "#volumes tr[data-volume='web']";
        waitFor("web listed, not attached", d -> text(row + " .attached").equals("—") && text(row + " .io").equals("—"));
        clickRedrawn(row + " button[data-action='attach']");
        assertThat(text("#dialog")).contains("Attach web here", "Attaches on the node serving this page");
        browser.findElement(By.id("dialog-confirm")).click();
        waitFor("web attached on node-a", d -> text(row + " .attached").equals("node-a"));
        JsonNode attached = api("/v1/volumes/web");
        assertThat(attached.path("attachment").path("nodeId").asText()).isEqualTo("node-a");
        assertThat(text("#notice")).startsWith("web attached: ").contains(attached.path("attachment").path("nbdUri").asText());

        // a client writes and reads over NBD (paced, as an application would) while the page is watched
        java.util.concurrent.atomic.AtomicBoolean stop = new java.util.concurrent.atomic.AtomicBoolean();
        java.util.concurrent.atomic.AtomicLong writtenBytes = new java.util.concurrent.atomic.AtomicLong();
        var client = java.util.concurrent.CompletableFuture.runAsync(() -> {
            try (NbdBlockClient c = NbdBlockClient.connect(attached.path("attachment").path("nbdUri").asText())) {
                byte[] chunk = new byte[256 * 1024];
                new Random(7).nextBytes(chunk);
                for (long at = 0; !stop.get(); at = (at + chunk.length) % (16 * MIB)) {
                    c.write(at, chunk);
                    writtenBytes.addAndGet(chunk.length);
                    assertThat(c.read(at, chunk.length)).isEqualTo(chunk);
                    Thread.sleep(50);
                }
            } catch (IOException | InterruptedException e) {
                throw new RuntimeException(e);
            }
        });
        try {
            // IOPS and bytes per second of both directions, as the table shows them
            waitFor("read and write rates in the table", d -> text(row + " .io .io-read").matches("R [1-9]\\d* IOPS · [0-9.]+ [KM]iB/s")
                    && text(row + " .io .io-write").matches("W [1-9]\\d* IOPS · [0-9.]+ [KM]iB/s"));
            shot("volumes-io");
            // the same rates from node-b, which asks node-a (where web's engine runs) for them
            HttpResponse<String> fromB = HTTP.send(authorized(nodes.get("node-b").apiUrl() + "/v1/volumes?prefix=web").build(),
                    HttpResponse.BodyHandlers.ofString());
            JsonNode io = JSON.readTree(fromB.body()).path("volumes").get(0).path("io");
            assertThat(io.path("writeIops").asLong()).as(fromB.body()).isPositive();
            assertThat(io.path("writeBytesPerSec").asLong()).isPositive();
            assertThat(io.path("readBytesPerSec").asLong()).isPositive();
            // since the client first opened web here (under a second, possibly), at most a 5 s window and a sampling step
            assertThat(io.path("windowMs").asLong()).isBetween(1L, 6000L);
            // and in the CLI: inspect, and the wide list's READ and WRITE columns
            CliRunner.Result inspect = cli().run("volume", "inspect", "web");
            assertThat(inspect.exit()).as(inspect.err()).isZero();
            assertThat(inspect.out()).containsPattern(
                    "I/O: +read [1-9]\\d* IOPS [0-9.]+ [KM]iB/s, write [1-9]\\d* IOPS [0-9.]+ [KM]iB/s \\(over the last [0-9.]+ m?s, measured on node-a\\)");
            CliRunner.Result wide = cli().run("volume", "list", "-o", "wide");
            assertThat(wide.exit()).as(wide.err()).isZero();
            assertThat(wide.out().lines().findFirst().orElseThrow()).contains("CONNECTIONS", "READ", "WRITE", "MIN-IN-SYNC");
            assertThat(wide.out().lines().filter(l -> l.startsWith("web ")).findFirst().orElseThrow())
                    .containsPattern("[1-9]\\d* IOPS [0-9.]+ [KM]iB/s +[1-9]\\d* IOPS [0-9.]+ [KM]iB/s");

            clickRedrawn(row + " .name a");
            waitFor("the volume page's I/O", d -> text("#volume-io").matches("(?s)R [1-9]\\d* IOPS.*\\nW [1-9]\\d* IOPS.*"));
        } finally {
            stop.set(true);
        }
        client.get(30, java.util.concurrent.TimeUnit.SECONDS);
        java.util.regex.Matcher counted = java.util.regex.Pattern.compile("ballast_volume_written_bytes_total\\{volume=\"web\"} (\\S+)")
                .matcher(raw("GET", "/metrics", null).body());
        assertThat(counted.find()).isTrue();
        assertThat((long) Double.parseDouble(counted.group(1))).isEqualTo(writtenBytes.get());

        // a snapshot taken through the page is listed there; the same name again is refused with the API's message
        clickRedrawn("button[data-action='snapshot']");
        type("#f-name", "before-upgrade");
        browser.findElement(By.id("dialog-confirm")).click();
        waitFor("the snapshot listed", d -> !d.findElements(By.cssSelector("#snapshots tr[data-snapshot='before-upgrade']")).isEmpty());
        assertThat(text("#snapshots tr[data-snapshot='before-upgrade']")).contains("16.0 MiB");
        assertThat(api("/v1/volumes/web/snapshots").path("snapshots").findValuesAsText("name")).contains("before-upgrade");
        clickRedrawn("button[data-action='snapshot']");
        type("#f-name", "before-upgrade");
        browser.findElement(By.id("dialog-confirm")).click();
        waitFor("the refusal", d -> !text(".dialog-error").isEmpty());
        HttpResponse<String> again = raw("POST", "/v1/volumes/web/snapshots", "{\"name\":\"before-upgrade\"}");
        assertThat(again.statusCode()).isEqualTo(409);
        assertThat(text(".dialog-error")).isEqualTo("The API refused this (HTTP 409 ALREADY_EXISTS): "
                + JSON.readTree(again.body()).path("error").path("message").asText());
        browser.findElement(By.id("dialog-cancel")).click();

        // detach asks first, then the page shows the volume detached
        clickRedrawn("button[data-action='detach']");
        assertThat(text("#dialog")).contains("Detach web?", "web is attached on node-a", "programs using it lose access");
        browser.findElement(By.id("dialog-confirm")).click();
        waitFor("web detached on its page", d -> text("#engine").contains("none: the volume is detached")
                && !d.findElements(By.cssSelector("button[data-action='attach']")).isEmpty());
        assertThat(api("/v1/volumes/web").path("attachment").isNull()).isTrue();
    }

    @Test
    @Order(8)
    void drainFromTheClusterPageAsksFirstAndShowsTheNodeDrainingAndWhatCouldNotMove() throws Exception {
        browser.findElement(By.cssSelector("#nav a[data-page='cluster']")).click();
        String row = "#nodes tr[data-node='node-c']";
        waitFor("node-c up and not cordoned", d -> text(row + " .state").equals("up"));
        clickRedrawn(row + " button[data-action='drain']");
        assertThat(text("#dialog")).contains("Drain node-c?", "every replica on it gets a replacement on another node");
        browser.findElement(By.id("dialog-confirm")).click();
        waitFor("node-c draining", d -> text(row + " .state").contains("cordoned") && text(row + " .state").contains("draining"));
        // three replicas on three nodes: no fourth node to move to, and the page says so
        JsonNode node = api("/v1/nodes/node-c");
        assertThat(node.path("cordoned").asBoolean()).isTrue();
        assertThat(node.path("draining").asBoolean()).isTrue();
        assertThat(text("#notice")).startsWith("Draining node-c: 0 replacement(s) placed; not placed: db (").contains("web (");
        shot("cluster-drain");
        clickRedrawn(row + " button[data-action='uncordon']");
        waitFor("node-c uncordoned", d -> !text(row + " .state").contains("cordoned"));
    }

    @Test
    @Order(9)
    void everyMetricTheGrafanaDashboardAndTheAlertRulesUseIsOnALiveNode() throws Exception {
        assertThat(metricsDuringResync).as("scraped during the resync").isNotNull();
        java.util.Set<String> exposed = io.ballast.deploy.MonitoringTest.exposedNames(metricsDuringResync);
        java.util.Set<String> used = io.ballast.deploy.MonitoringTest.metricNamesUsed();
        assertThat(used).contains("ballast_engine_resync_progress_bytes", "ballast_nbd_request_duration_seconds_bucket",
                "ballast_engine_op_duration_seconds_bucket");
        assertThat(used).as("names in deploy/monitoring missing from a live node's /metrics")
                .allSatisfy(name -> assertThat(exposed).contains(name));
    }

    @Test
    @Order(10)
    void withTheApiUnreachableThePageSaysSo() throws Exception {
        browser.findElement(By.cssSelector("#nav a[data-page='cluster']")).click();
        waitFor("cluster page", d -> d.findElements(By.cssSelector("#nodes tr[data-node]")).size() == 3);
        nodes.get("node-a").kill9(); // the node that serves the page and its API
        waitFor("the banner", d -> "unreachable".equals(d.findElement(By.id("api-status")).getAttribute("data-state")));
        assertThat(text("#api-status")).contains("The Ballast API is unreachable", ui).contains("Showing what it last said");
        assertThat(browser.findElements(By.cssSelector("#nodes tr[data-node]"))).hasSize(3); // the last view stays
        shot("unreachable");
    }

    // ---- helpers ----

    static void write(NbdBlockClient c, long offsetBytes, long lengthBytes, long seed) throws IOException {
        Random r = new Random(seed);
        byte[] chunk = new byte[(int) MIB];
        for (long at = 0; at < lengthBytes; at += MIB) {
            r.nextBytes(chunk);
            c.write(offsetBytes + at, chunk);
        }
        c.flush();
    }

    /** Clicks an element of a table the page redraws every second (a redraw between finding and clicking: again). */
    static void clickRedrawn(String css) {
        waitFor("a click on " + css, d -> {
            d.findElement(By.cssSelector(css)).click();
            return true;
        });
    }

    static String scrape() {
        try {
            return raw("GET", "/metrics", null).body();
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    static String text(String css) {
        List<WebElement> found = browser.findElements(By.cssSelector(css));
        return found.isEmpty() ? "" : found.getFirst().getText().strip();
    }

    static void type(String css, String value) {
        WebElement e = browser.findElement(By.cssSelector(css));
        e.clear();
        e.sendKeys(value);
    }

    static void waitFor(String what, Function<WebDriver, Boolean> condition) {
        new WebDriverWait(browser, Duration.ofSeconds(45), Duration.ofMillis(100))
                .ignoring(org.openqa.selenium.StaleElementReferenceException.class)
                .ignoring(org.openqa.selenium.NoSuchElementException.class)
                .withMessage(() -> what + "; the page shows:\n" + browser.findElement(By.tagName("body")).getText())
                .until(condition::apply);
    }

    static void shot(String name) throws IOException {
        byte[] png = ((TakesScreenshot) browser).getScreenshotAs(OutputType.BYTES);
        Files.write(SHOTS.resolve(name + ".png"), png);
    }

    /** The token the page keeps in this tab's session storage (null: none). */
    static Object sessionToken() {
        return ((JavascriptExecutor) browser).executeScript("return sessionStorage.getItem('ballast.apiToken')");
    }

    /** The CLI against node-a, as a user with the admin token in the environment. */
    static CliRunner cli() {
        return new CliRunner().server(ui, adminToken);
    }

    static HttpRequest.Builder authorized(String url) {
        return HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(30)).header("Authorization", "Bearer " + adminToken);
    }

    static HttpResponse<String> raw(String method, String path, String body) throws IOException, InterruptedException {
        HttpRequest.Builder b = authorized(ui + path);
        b.method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body));
        return HTTP.send(b.build(), HttpResponse.BodyHandlers.ofString());
    }

    static JsonNode send(String method, String path, String body) throws IOException, InterruptedException {
        HttpResponse<String> r = raw(method, path, body);
        assertThat(r.statusCode()).as(method + " " + path + ": " + r.body()).isBetween(200, 299);
        return r.body().isEmpty() ? JSON.createObjectNode() : JSON.readTree(r.body());
    }

    static JsonNode api(String path) throws IOException, InterruptedException {
        return send("GET", path, null);
    }

    static void await(String what, java.util.concurrent.Callable<Boolean> condition) throws Exception {
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (!condition.call()) {
            assertThat(System.nanoTime()).as("timed out waiting for " + what).isLessThan(deadline);
            Thread.sleep(100);
        }
    }
}
