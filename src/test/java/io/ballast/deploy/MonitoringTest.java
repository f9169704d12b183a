package io.ballast.deploy;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import io.ballast.testing.Requirements;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * deploy/monitoring: the Prometheus rules load in promtool (Debian's prometheus package) and each
 * has a severity, a summary and a runbook line; the Grafana dashboard is well formed. Which metric
 * names they use is {@link #metricNamesUsed()}: DashboardBrowserSystemTest checks them against a
 * live node's /metrics during a resync (when every series, resync progress included, is exposed).
 */
public class MonitoringTest {
    static final Path DIR = Path.of(System.getProperty("user.dir")).resolve("deploy/monitoring");
    static final Path RULES = DIR.resolve("ballast-alerts.yml");
    static final Path DASHBOARD = DIR.resolve("ballast-dashboard.json");
    static final Path PROMTOOL = Path.of("/usr/bin/promtool");

    /** Ballast's own names and the JVM/process ones it exports; PromQL functions and `up` never match. */
    private static final Pattern METRIC = Pattern.compile("\\b((?:ballast|jvm|process)_[a-z0-9_]+)\\b");

    @Test
    void promtoolLoadsTheRules() throws Exception {
        Requirements.require(Files.isExecutable(PROMTOOL), "needs promtool (apt-get install -y prometheus; bin/install-deps)");
        Process p = new ProcessBuilder(PROMTOOL.toString(), "check", "rules", RULES.toString()).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
        assertThat(p.exitValue()).as(out).isZero();
        assertThat(out).contains("SUCCESS: " + rules().size() + " rules found");
    }

    @Test
    void everyRuleHasASeverityASummaryAndARunbookAndTheIssueListIsCovered() throws Exception {
        List<JsonNode> rules = rules();
        Set<String> names = new TreeSet<>();
        for (JsonNode r : rules) {
            String name = r.path("alert").asText();
            names.add(name);
            assertThat(name).as("rule %s", r).matches("Ballast[A-Za-z]+");
            assertThat(r.path("expr").asText()).as(name).isNotBlank();
            assertThat(r.path("labels").path("severity").asText()).as(name).isIn("warning", "critical");
            assertThat(r.path("annotations").path("summary").asText()).as(name).isNotBlank();
            assertThat(r.path("annotations").path("runbook").asText()).as(name + " runbook").hasSizeGreaterThan(40);
        }
        assertThat(names).contains("BallastNodeDown", "BallastVolumeDegraded", "BallastVolumeUnavailable", "BallastResyncStalled",
                "BallastPoolNearlyFull", "BallastRaftLeaderChanges", "BallastFencedRequests");
    }

    @Test
    void theDashboardIsWellFormedWithUniquePanelIdsAndADatasourceVariable() throws Exception {
        JsonNode d = new ObjectMapper().readTree(DASHBOARD.toFile());
        assertThat(d.path("uid").asText()).isEqualTo("ballast-overview");
        Set<Integer> ids = new TreeSet<>();
        int queries = 0;
        for (JsonNode p : d.path("panels")) {
            assertThat(ids.add(p.path("id").asInt())).as("panel id %s unique", p.path("id")).isTrue();
            assertThat(p.path("gridPos").path("w").asInt()).isBetween(1, 24);
            for (JsonNode t : p.path("targets")) {
                assertThat(t.path("expr").asText()).as(p.path("title").asText()).isNotBlank();
                queries++;
            }
        }
        assertThat(queries).isGreaterThan(30);
        assertThat(d.path("templating").path("list").findValuesAsText("name")).contains("datasource", "instance");
        // p50 and p99 of the NBD and engine latency histograms (issue 25)
        String all = String.join("\n", exprs(d));
        assertThat(all).contains("histogram_quantile(0.5, sum by (command, le) (rate(ballast_nbd_request_duration_seconds_bucket",
                "histogram_quantile(0.99, sum by (command, le) (rate(ballast_nbd_request_duration_seconds_bucket",
                "histogram_quantile(0.99, sum by (op, le) (rate(ballast_engine_op_duration_seconds_bucket");
    }

    static List<JsonNode> rules() throws IOException {
        JsonNode doc = new ObjectMapper(new YAMLFactory()).readTree(RULES.toFile());
        List<JsonNode> out = new ArrayList<>();
        doc.path("groups").forEach(g -> g.path("rules").forEach(out::add));
        return out;
    }

    private static List<String> exprs(JsonNode dashboard) {
        List<String> out = new ArrayList<>();
        dashboard.path("panels").forEach(p -> p.path("targets").forEach(t -> out.add(t.path("expr").asText())));
        dashboard.path("templating").path("list").forEach(v -> out.add(v.path("definition").asText()));
        return out;
    }

    /** Every metric name the rules and the dashboard query, as exposed (a histogram's _bucket/_count/_sum series). */
    public static Set<String> metricNamesUsed() throws IOException {
        List<String> exprs = new ArrayList<>();
        rules().forEach(r -> exprs.add(r.path("expr").asText()));
        exprs.addAll(exprs(new ObjectMapper().readTree(DASHBOARD.toFile())));
        Set<String> names = new TreeSet<>();
        for (String e : exprs) {
            Matcher m = METRIC.matcher(e);
            while (m.find()) {
                names.add(m.group(1));
            }
        }
        return names;
    }

    /** The series names in a /metrics answer (Prometheus text format). */
    public static Set<String> exposedNames(String metricsText) {
        Set<String> names = new TreeSet<>();
        for (String line : metricsText.split("\n")) {
            if (line.isBlank() || line.startsWith("#")) {
                continue;
            }
            int end = 0;
            while (end < line.length() && line.charAt(end) != '{' && line.charAt(end) != ' ') {
                end++;
            }
            names.add(line.substring(0, end));
        }
        return names;
    }
}
