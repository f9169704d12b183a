package io.ballast.cli;

import io.ballast.common.DurableFiles;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Optional;

/**
 * After a cluster CA rotation the CLI context in use must trust the new CA: its CA file becomes
 * {@code CONTEXT-ca.pem} beside the CLI config (0600), holding what the cluster trusts (both CAs while
 * it rotates, the new one after). A node's own {@code DATA/tls/ca.crt} (the local cluster's context) is
 * kept current by the node; a file named by --ca-file or $BALLAST_CA_FILE is the user's and left alone.
 */
final class CaContexts {
    private CaContexts() {}

    /** Points the current context at {@code trustPem}; answers a note for the user, or null if nothing to say. */
    static String update(BallastCli cli, Output output, String trustPem) {
        if (trustPem == null || trustPem.isBlank()) {
            return null;
        }
        ApiTarget t = ApiTarget.resolve(output, cli.env, cli.home());
        Optional<Path> inUse = CliTrust.caFile();
        if (t.contextName() == null || !CliTrust.caFileFromContext()) {
            return inUse.filter(f -> !isNodeCaFile(f)).map(f -> "The CLI trusts " + f + " (--ca-file or $BALLAST_CA_FILE), which"
                    + " is not changed: save the output of `ballast cluster ca status --pem` there as " + f).orElse(null);
        }
        if (inUse.filter(CaContexts::isNodeCaFile).isPresent()) {
            return null; // the node rewrites its ca.crt itself
        }
        CliConfig config = new CliConfig(CliConfig.location(cli.env));
        Path file = config.path().resolveSibling(t.contextName() + "-ca.pem");
        try {
            DurableFiles.writeAtomically(file, trustPem.getBytes(StandardCharsets.US_ASCII));
            io.ballast.common.OwnerOnly.restrictFile(file);
            config.put(new CliConfig.Context(t.contextName(), null, file.toAbsolutePath().toString(), null), false);
        } catch (IOException e) {
            return "Could not update the CLI context " + t.contextName() + " with the cluster's CAs (" + e.getMessage() + ")";
        }
        return "CLI context " + t.contextName() + " trusts " + file;
    }

    private static boolean isNodeCaFile(Path f) {
        return f.getFileName().toString().equals("ca.crt") && f.getParent() != null && f.getParent().getFileName() != null
                && f.getParent().getFileName().toString().equals("tls");
    }
}
