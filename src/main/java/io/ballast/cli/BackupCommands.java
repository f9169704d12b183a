package io.ballast.cli;

import com.fasterxml.jackson.databind.JsonNode;
import io.ballast.common.BallastException;
import io.ballast.common.ErrorCode;
import io.ballast.common.Sizes;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Parameters;

@Command(name = "backup", description = "Incremental, encrypted backups to S3 (docs/data-protection.md).",
        subcommands = {BackupCommands.TargetGroup.class, BackupCommands.Create.class, BackupCommands.ListCmd.class,
                BackupCommands.Inspect.class, BackupCommands.Delete.class, BackupCommands.Verify.class, BackupCommands.Restore.class})
final class BackupCommands extends CommandGroup {

    @ParentCommand
    BallastCli cli;

    abstract static class Base implements Callable<Integer> {
        @Mixin
        Output output;

        abstract BallastCli cli();

        NodeClient client() {
            return cli().client(output, java.time.Duration.ofHours(24));
        }

        static String q(String s) {
            return URLEncoder.encode(s, StandardCharsets.UTF_8);
        }
    }

    abstract static class Sub extends Base {
        @ParentCommand
        BackupCommands parent;

        @Override
        BallastCli cli() {
            return parent.cli;
        }
    }

    @Command(name = "target", description = "Add, list and remove backup targets (cluster-wide).",
            subcommands = {TargetAdd.class, TargetList.class, TargetRemove.class})
    static final class TargetGroup extends CommandGroup {
        @ParentCommand
        BackupCommands parent;
    }

    abstract static class TargetBase extends Base {
        @ParentCommand
        TargetGroup group;

        @Override
        BallastCli cli() {
            return group.parent.cli;
        }
    }

    @Command(name = "add", description = "Add a target: checks the endpoint, bucket, credentials and key, then records it in the cluster.")
    static final class TargetAdd extends TargetBase {
        @Parameters(index = "0", paramLabel = "NAME")
        String name;

        @Parameters(index = "1", paramLabel = "s3://BUCKET/PREFIX")
        String url;

        @Option(names = "--endpoint", paramLabel = "URL", description = "S3 endpoint (default: AWS for the region)")
        String endpoint;

        @Option(names = "--region", paramLabel = "R", defaultValue = "us-east-1")
        String region;

        @Option(names = "--credentials-file", paramLabel = "F",
                description = "File with aws_access_key_id and aws_secret_access_key, same path on every node (default: the nodes' environment)")
        Path credentialsFile;

        @Option(names = "--access-key-env", paramLabel = "VAR", description = "Environment variable with the access key id (default AWS_ACCESS_KEY_ID)")
        String accessKeyEnv;

        @Option(names = "--secret-key-env", paramLabel = "VAR", description = "Environment variable with the secret key (default AWS_SECRET_ACCESS_KEY)")
        String secretKeyEnv;

        @Option(names = "--key-file", required = true, paramLabel = "K",
                description = "The operator's backup key (32 random bytes: head -c 32 /dev/urandom > K), same path on every node")
        Path keyFile;

        @Option(names = "--chunk-size", paramLabel = "SIZE", description = "Chunk size (default 1MiB; 4KiB..64MiB)")
        String chunkSize;

        @Override
        public Integer call() {
            Map<String, Object> body = new LinkedHashMap<>();
            body.put("name", name);
            body.put("url", url);
            if (endpoint != null) {
                body.put("endpoint", endpoint);
            }
            body.put("region", region);
            if (credentialsFile != null) {
                body.put("credentialsFile", credentialsFile.toAbsolutePath().toString());
            }
            if (accessKeyEnv != null) {
                body.put("accessKeyEnv", accessKeyEnv);
            }
            if (secretKeyEnv != null) {
                body.put("secretKeyEnv", secretKeyEnv);
            }
            body.put("keyFile", keyFile.toAbsolutePath().toString());
            if (chunkSize != null) {
                body.put("chunkSize", Sizes.parse(chunkSize));
            }
            JsonNode t = client().post("/v1/backup-targets", body);
            if (output.json()) {
                output.print(cli().out, t);
            } else {
                cli().err.println("added backup target " + name + " (" + url + ", " + t.path("backups").asLong() + " backups there)");
            }
            return ExitCodes.OK;
        }
    }

    @Command(name = "list", aliases = "ls", description = "List backup targets.")
    static final class TargetList extends TargetBase {
        @Override
        public Integer call() {
            JsonNode ts = client().get("/v1/backup-targets").path("targets");
            if (output.json()) {
                output.print(cli().out, ts);
                return ExitCodes.OK;
            }
            List<List<String>> rows = new ArrayList<>();
            for (JsonNode t : ts) {
                rows.add(List.of(Output.text(t.path("name")), Output.text(t.path("url")), Output.text(t.path("endpoint")),
                        Output.text(t.path("region")), t.path("credentialsFile").isTextual() ? t.path("credentialsFile").asText()
                                : "env " + t.path("credentialsEnv").asText(), Output.text(t.path("keyFile"))));
            }
            Output.table(cli().out, List.of("NAME", "URL", "ENDPOINT", "REGION", "CREDENTIALS", "KEY FILE"), rows);
            return ExitCodes.OK;
        }
    }

    @Command(name = "remove", aliases = "rm", description = "Forget a target (its backups stay in the bucket).")
    static final class TargetRemove extends TargetBase {
        @Parameters(paramLabel = "NAME")
        String name;

        @Override
        public Integer call() {
            client().delete("/v1/backup-targets/" + q(name));
            cli().err.println("removed backup target " + name);
            return ExitCodes.OK;
        }
    }

    /** Polls a job on the node that runs it, drawing a progress bar on stderr; returns the finished job. */
    static JsonNode follow(BallastCli cli, NodeClient client, JsonNode job, boolean quiet) {
        NodeClient where = job.path("apiUrl").isTextual() ? client.at(job.path("apiUrl").asText()) : client;
        String id = job.path("id").asText();
        while ("running".equals(job.path("state").asText())) {
            if (!quiet) {
                cli.err.print("\r" + progressLine(job.path("progress")));
                cli.err.flush();
            }
            try {
                Thread.sleep(500);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
            job = where.get("/v1/backup-jobs/" + Base.q(id));
        }
        if (!quiet) {
            cli.err.println("\r" + progressLine(job.path("progress")));
        }
        if ("failed".equals(job.path("state").asText())) {
            JsonNode e = job.path("error");
            ErrorCode code;
            try {
                code = ErrorCode.valueOf(e.path("code").asText());
            } catch (IllegalArgumentException x) {
                code = ErrorCode.INTERNAL;
            }
            throw new BallastException(code, e.path("message").asText("backup job " + id + " failed"));
        }
        return job;
    }

    static String progressLine(JsonNode p) {
        long done = p.path("bytesDone").asLong();
        long total = p.path("bytesTotal").asLong();
        int width = 30;
        int filled = total <= 0 ? 0 : (int) Math.min(width, done * width / total);
        String bar = "[" + "#".repeat(filled) + " ".repeat(width - filled) + "]";
        String pct = total <= 0 ? "" : String.format(" %3d%%", done * 100 / total);
        String eta = p.path("etaMs").isNumber() ? " ETA " + Math.round(p.path("etaMs").asDouble() / 1000) + "s" : "";
        return String.format("%-10s %s%s %s / %s  %s/s%s   ", p.path("phase").asText(), bar, pct, Sizes.format(done), Sizes.format(total),
                Sizes.format((long) p.path("rateBytesPerSec").asDouble()), eta);
    }

    @Command(name = "create", description = "Back up a volume (attached: through a snapshot cut for the backup and deleted after it)"
            + " or one of its snapshots: only what changed since its last backup in the target.")
    static final class Create extends Sub {
        @Parameters(paramLabel = "VOL")
        String volume;

        @Option(names = "--from-snapshot", paramLabel = "SNAP", description = "Back up this snapshot of VOL (it is kept)")
        String fromSnapshot;

        @Option(names = "--target", paramLabel = "NAME", description = "Backup target (needed when there are several)")
        String target;

        @Option(names = "--rate", paramLabel = "SIZE/s", description = "Throttle, e.g. 50MiB (per second of volume data)")
        String rate;

        @Option(names = "--quiet", description = "No progress bar")
        boolean quiet;

        @Override
        public Integer call() {
            Map<String, Object> body = new LinkedHashMap<>();
            body.put("volume", volume);
            if (fromSnapshot != null) {
                body.put("fromSnapshot", fromSnapshot);
            }
            putTargetAndRate(body, target, rate);
            NodeClient c = client();
            JsonNode job = follow(cli(), c, c.post("/v1/backups", body), quiet || output.json());
            JsonNode r = job.path("result");
            if (output.json()) {
                output.print(cli().out, r);
            } else {
                JsonNode s = r.path("stats");
                cli().out.println(r.path("id").asText());
                cli().err.println("backed up " + volume + (fromSnapshot == null ? "" : "@" + fromSnapshot) + " as " + r.path("id").asText() + (r.path("parent").isTextual()
                        ? " (incremental to " + r.path("parent").asText() + ")" : " (full)") + ": read " + Sizes.format(s.path("bytesRead").asLong())
                        + ", uploaded " + s.path("chunksUploaded").asLong() + " chunks (" + Sizes.format(s.path("bytesUploaded").asLong())
                        + "), reused " + s.path("chunksReused").asLong() + ", in " + Output.duration(s.path("durationMs")));
            }
            return ExitCodes.OK;
        }
    }

    @Command(name = "list", aliases = "ls", description = "List the complete backups of every target (or one).")
    static final class ListCmd extends Sub {
        @Option(names = "--target", paramLabel = "NAME")
        String target;

        @Override
        public Integer call() {
            JsonNode l = client().get("/v1/backups" + (target == null ? "" : "?target=" + q(target)));
            if (output.json()) {
                output.print(cli().out, l);
                return ExitCodes.OK;
            }
            List<List<String>> rows = new ArrayList<>();
            for (JsonNode b : l.path("backups")) {
                rows.add(List.of(b.path("id").asText(), b.path("target").asText(), b.path("volume").asText(),
                        Output.size(b.path("volumeSizeBytes")), Output.size(b.path("storedPlainBytes")),
                        b.path("parent").isTextual() ? "incremental" : "full", Output.text(b.path("completedAt"))));
            }
            Output.table(cli().out, List.of("ID", "TARGET", "VOLUME", "SIZE", "DATA", "KIND", "COMPLETED"), rows);
            for (JsonNode e : l.path("errors")) {
                cli().err.println("warning: target " + e.path("target").asText() + ": " + e.path("message").asText());
            }
            return ExitCodes.OK;
        }
    }

    @Command(name = "inspect", description = "Show one backup.")
    static final class Inspect extends Sub {
        @Parameters(paramLabel = "ID")
        String id;

        @Option(names = "--target", paramLabel = "NAME")
        String target;

        @Override
        public Integer call() {
            output.print(cli().out, client().get("/v1/backups/" + q(id) + (target == null ? "" : "?target=" + q(target))));
            return ExitCodes.OK;
        }
    }

    @Command(name = "delete", aliases = "rm", description = "Delete a backup; chunks no other backup uses are collected.")
    static final class Delete extends Sub {
        @Parameters(paramLabel = "ID")
        String id;

        @Option(names = "--target", paramLabel = "NAME")
        String target;

        @Override
        public Integer call() {
            JsonNode r = client().delete("/v1/backups/" + q(id) + (target == null ? "" : "?target=" + q(target)));
            if (output.json()) {
                output.print(cli().out, r);
            } else {
                cli().err.println("deleted backup " + id + "; " + (r.path("deferredBecause").isTextual()
                        ? "chunk collection deferred: " + r.path("deferredBecause").asText()
                        : "collected " + r.path("chunksDeleted").asLong() + " chunks, " + r.path("chunksKept").asLong() + " still in use"));
            }
            return ExitCodes.OK;
        }
    }

    @Command(name = "verify", description = "Read every chunk of a backup back and check it.")
    static final class Verify extends Sub {
        @Parameters(paramLabel = "ID")
        String id;

        @Option(names = "--target", paramLabel = "NAME")
        String target;

        @Override
        public Integer call() {
            Map<String, Object> body = new LinkedHashMap<>();
            if (target != null) {
                body.put("target", target);
            }
            NodeClient c = client();
            JsonNode r = follow(cli(), c, c.post("/v1/backups/" + q(id) + "/verify", body), output.json()).path("result");
            if (output.json()) {
                output.print(cli().out, r);
            } else if (r.path("ok").asBoolean()) {
                cli().err.println("backup " + id + " is intact: " + r.path("chunksChecked").asLong() + " chunks, "
                        + Sizes.format(r.path("bytesChecked").asLong()));
            } else {
                for (JsonNode p : r.path("problems")) {
                    cli().out.println("offset " + p.path("offsetBytes").asLong() + " chunk " + p.path("name").asText() + ": "
                            + p.path("error").asText());
                }
                cli().err.println("backup " + id + " is damaged: " + r.path("problems").size() + " bad chunks");
            }
            return r.path("ok").asBoolean() ? ExitCodes.OK : ExitCodes.of(ErrorCode.CHECKSUM_MISMATCH);
        }
    }

    @Command(name = "restore", description = "Restore a backup into a new volume.")
    static final class Restore extends Sub {
        @Parameters(paramLabel = "ID")
        String id;

        @Option(names = "--to", required = true, paramLabel = "NEWVOL")
        String to;

        @Option(names = "--target", paramLabel = "NAME")
        String target;

        @Option(names = "--rate", paramLabel = "SIZE/s")
        String rate;

        @Override
        public Integer call() {
            Map<String, Object> body = new LinkedHashMap<>();
            body.put("to", to);
            putTargetAndRate(body, target, rate);
            NodeClient c = client();
            JsonNode job = follow(cli(), c, c.post("/v1/backups/" + q(id) + "/restore", body), output.json());
            if (output.json()) {
                output.print(cli().out, job.path("result"));
            } else {
                cli().err.println("restored " + id + " into volume " + to);
            }
            return ExitCodes.OK;
        }
    }

    /** The optional target and throttle of a create, verify or restore request ({@code 50MiB} or {@code 50MiB/s}). */
    static void putTargetAndRate(Map<String, Object> body, String target, String rate) {
        if (target != null) {
            body.put("target", target);
        }
        if (rate != null) {
            body.put("rate", Sizes.parse(rate.replaceAll("(?i)/s$", "")));
        }
    }
}
