package io.ballast.cli;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;

/** {@code ballast auth}: API tokens (docs/security.md, "API tokens"). Managing tokens needs the admin role. */
@Command(name = "auth", description = "API tokens: create, list, revoke; and who you are.",
        subcommands = {AuthCommands.TokenGroup.class, AuthCommands.WhoAmI.class, AuthCommands.NbdClientCert.class})
final class AuthCommands extends CommandGroup {
    @ParentCommand
    BallastCli cli;

    @Command(name = "whoami", description = "The principal and role the server sees for your credential.")
    static final class WhoAmI implements Callable<Integer> {
        @ParentCommand
        AuthCommands parent;

        @Mixin
        Output output;

        @Override
        public Integer call() {
            JsonNode me = parent.cli.client(output).get("/v1/auth/whoami");
            if (output.json()) {
                output.print(parent.cli.out, me);
            } else {
                parent.cli.out.println(me.path("name").asText() + " (" + me.path("role").asText() + ")");
            }
            return ExitCodes.OK;
        }
    }

    /**
     * An NBD client certificate from the cluster CA, in libnbd's directory layout: the key is made here
     * and never leaves this host; the cluster signs its CSR (docs/nbd.md, "TLS").
     */
    @Command(name = "nbd-client-cert", description = "Make a key and get an NBD client certificate for it from the cluster CA"
            + " (admin only), in the directory layout libnbd, qemu and nbdcopy read (tls-certificates=DIR); or --revoke"
            + " every certificate issued to NAME so far.")
    static final class NbdClientCert implements Callable<Integer> {
        @ParentCommand
        AuthCommands parent;

        @Mixin
        Output output;

        @Parameters(paramLabel = "NAME", description = "Who the certificate is for (its CN is nbd-client:NAME)")
        String name;

        @Option(names = "--revoke", description = "Revoke the certificates issued to NAME until now (refused from the next"
                + " connection on, on every node); a certificate issued later works")
        boolean revoke;

        @Option(names = "--out", paramLabel = "DIR",
                description = "Directory for ca-cert.pem, client-cert.pem and client-key.pem (made 0700; the key 0600)")
        java.nio.file.Path out;

        @Option(names = "--lifetime", paramLabel = "DURATION", defaultValue = "30d",
                description = "How long the certificate is valid (e.g. 12h, 30d; at most 365d; default: ${DEFAULT-VALUE})")
        String lifetime;

        @Override
        public Integer call() throws java.io.IOException {
            io.ballast.common.Names.requireName("NBD client", name);
            if (revoke) {
                JsonNode r = parent.cli.client(output).delete("/v1/cluster/nbd-client-certificate/" + name);
                output.done(parent.cli.out, parent.cli.err, Output.result("revoked", "name", name, "at", r.path("at").asText()),
                        "revoked the NBD client certificates of " + name + " issued until " + r.path("at").asText());
                return ExitCodes.OK;
            }
            if (out == null) {
                throw io.ballast.common.BallastException.invalid("--out DIR is required (where the key and certificate go)");
            }
            long hours = Math.max(1, ttlSeconds(lifetime) / 3600);
            java.nio.file.Path keyFile = out.resolve("client-key.pem");
            if (java.nio.file.Files.exists(keyFile)) {
                throw io.ballast.common.BallastException.alreadyExists(keyFile + " exists; choose another --out (or remove it)");
            }
            java.security.KeyPair kp = io.ballast.security.CertificateAuthority.newKeyPair();
            String csr = io.ballast.security.Pem.encode(io.ballast.security.CertificateAuthority.csr(name, kp));
            Map<String, Object> body = new LinkedHashMap<>();
            body.put("name", name);
            body.put("csr", csr);
            body.put("lifetimeHours", hours);
            JsonNode r = parent.cli.client(output).post("/v1/cluster/nbd-client-certificate", body);
            io.ballast.common.OwnerOnly.createDirectories(out);
            io.ballast.common.OwnerOnly.restrictDirectory(out);
            java.nio.file.Files.writeString(keyFile, io.ballast.security.Pem.encodeEcKeyWithPublic(kp),
                    java.nio.charset.StandardCharsets.US_ASCII, java.nio.file.StandardOpenOption.CREATE_NEW);
            io.ballast.common.OwnerOnly.restrictFile(keyFile);
            java.nio.file.Files.writeString(out.resolve("client-cert.pem"), r.path("certificate").asText());
            java.nio.file.Files.writeString(out.resolve("ca-cert.pem"), r.path("ca").asText());
            com.fasterxml.jackson.databind.node.ObjectNode result = Output.result("issued", "name", name, "dir",
                    out.toAbsolutePath().toString(), "notAfter", r.path("notAfter").asText());
            output.done(parent.cli.out, parent.cli.err, result, "NBD client certificate for " + name + " in " + out
                    + " (valid until " + r.path("notAfter").asText() + "); use it with e.g. nbdinfo"
                    + " 'nbds://HOST:PORT/VOLUME?tls-certificates=" + out.toAbsolutePath() + "'");
            return ExitCodes.OK;
        }
    }

    @Command(name = "token", description = "Create, list and revoke API tokens (admin only).",
            subcommands = {Create.class, ListCmd.class, Revoke.class})
    static final class TokenGroup extends CommandGroup {
        @ParentCommand
        AuthCommands parent;
    }

    abstract static class Base implements Callable<Integer> {
        @ParentCommand
        TokenGroup group;

        @Mixin
        Output output;

        BallastCli cli() {
            return group.parent.cli;
        }
    }

    @Command(name = "create", description = "Create an API token and print it once (it is never shown again).")
    static final class Create extends Base {
        @Option(names = "--role", required = true, paramLabel = "ROLE", description = "viewer, operator or admin")
        String role;

        @Option(names = "--ttl", paramLabel = "DURATION", description = "Expire after this long (e.g. 90s, 30m, 24h, 7d; default: never)")
        String ttl;

        @Option(names = "--name", paramLabel = "NAME", description = "A name for the token (default: ROLE-<random>); the audit trail shows it")
        String name;

        @Override
        public Integer call() {
            Map<String, Object> body = new LinkedHashMap<>();
            body.put("name", name != null ? name : role + "-" + java.util.HexFormat.of().toHexDigits(
                    java.util.concurrent.ThreadLocalRandom.current().nextInt()).substring(0, 6));
            body.put("role", role);
            if (ttl != null) {
                body.put("ttlSeconds", ttlSeconds(ttl));
            }
            JsonNode t = client().post("/v1/auth/tokens", body);
            if (output.json()) {
                output.print(cli().out, t);
            } else {
                // the token alone on stdout (scripts: `TOKEN=$(ballast auth token create ...)`); the rest on stderr
                cli().out.println(t.path("token").asText());
                cli().err.println("created API token " + t.path("name").asText() + " (id " + t.path("id").asText() + ", role "
                        + t.path("role").asText() + (t.path("expiresAt").isNull() ? ", no expiry" : ", expires " + t.path("expiresAt").asText())
                        + "); it is shown only now, keep it safe");
            }
            return ExitCodes.OK;
        }

        NodeClient client() {
            return cli().client(output);
        }
    }

    @Command(name = "list", description = "List API tokens: names, roles, expiry (never the secrets).")
    static final class ListCmd extends Base {
        @Override
        public Integer call() {
            JsonNode tokens = cli().client(output).get("/v1/auth/tokens");
            if (output.json()) {
                output.print(cli().out, tokens);
                return ExitCodes.OK;
            }
            List<List<String>> rows = new ArrayList<>();
            for (JsonNode t : tokens.path("tokens")) {
                rows.add(List.of(t.path("name").asText(), t.path("id").asText(), t.path("role").asText(),
                        t.path("expiresAt").isNull() ? "never" : Output.instant(t.path("expiresAt"))
                                + (t.path("expired").asBoolean() ? " (expired)" : ""),
                        Output.text(t.path("createdBy")), Output.instant(t.path("createdAt"))));
            }
            Output.table(cli().out, List.of("NAME", "ID", "ROLE", "EXPIRES", "CREATED BY", "CREATED"), rows);
            return ExitCodes.OK;
        }
    }

    @Command(name = "revoke", description = "Revoke an API token by name or id: it authenticates nothing from then on.")
    static final class Revoke extends Base {
        @Parameters(paramLabel = "NAME|ID")
        String token;

        @Override
        public Integer call() {
            JsonNode r = cli().client(output).delete("/v1/auth/tokens/" + java.net.URLEncoder.encode(token, java.nio.charset.StandardCharsets.UTF_8));
            if (output.json()) {
                output.print(cli().out, r);
            } else {
                cli().err.println("revoked API token " + r.path("name").asText() + " (id " + r.path("revoked").asText() + ")");
            }
            return ExitCodes.OK;
        }
    }

    /** 90s, 30m, 24h, 7d (a bare number is seconds). */
    static long ttlSeconds(String s) {
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("(\\d{1,9})(s|m|h|d)?").matcher(s.strip());
        if (!m.matches() || Long.parseLong(m.group(1)) == 0) {
            throw io.ballast.common.BallastException.invalid("--ttl '" + s + "' is not a duration; use e.g. 90s, 30m, 24h or 7d");
        }
        long n = Long.parseLong(m.group(1));
        return switch (m.group(2) == null ? "s" : m.group(2)) {
            case "m" -> n * 60;
            case "h" -> n * 3600;
            case "d" -> n * 86400;
            default -> n;
        };
    }
}
