package io.ballast.backup;

import io.ballast.common.BallastException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/**
 * An access key pair, read where the target says (a file or two environment variables). Its
 * {@link #toString()} never shows the secret; nothing here logs it.
 */
public record S3Credentials(String accessKeyId, String secretAccessKey) {

    @Override
    public String toString() {
        return "S3Credentials[accessKeyId=" + accessKeyId + ", secretAccessKey=redacted]";
    }

    public static S3Credentials resolve(TargetSpec spec, Map<String, String> env) {
        if (spec.credentialsFile() != null) {
            return readFile(Path.of(spec.credentialsFile()));
        }
        String id = env.get(spec.accessKeyEnv());
        String secret = env.get(spec.secretKeyEnv());
        if (id == null || id.isBlank() || secret == null || secret.isBlank()) {
            throw BallastException.invalid("backup target " + spec.name() + " takes its credentials from the environment, but "
                    + spec.accessKeyEnv() + " or " + spec.secretKeyEnv() + " is not set in this node's environment");
        }
        return new S3Credentials(id.strip(), secret.strip());
    }

    /**
     * Reads {@code aws_access_key_id = ...} and {@code aws_secret_access_key = ...} (the AWS shared
     * credentials format; the first section that has them) or {@code AWS_ACCESS_KEY_ID=...} lines.
     */
    public static S3Credentials readFile(Path file) {
        String text;
        try {
            text = Files.readString(file);
        } catch (java.nio.file.NoSuchFileException e) {
            throw BallastException.invalid("credentials file " + file + " does not exist");
        } catch (IOException e) {
            throw BallastException.invalid("cannot read credentials file " + file + ": " + e.getClass().getSimpleName());
        }
        String id = null;
        String secret = null;
        for (String line : text.split("\n")) {
            int eq = line.indexOf('=');
            if (eq < 0 || line.strip().startsWith("#")) {
                continue;
            }
            String k = line.substring(0, eq).strip().toLowerCase(java.util.Locale.ROOT);
            if (k.startsWith("export ")) {
                k = k.substring(7).strip();
            }
            String v = line.substring(eq + 1).strip();
            if (v.length() >= 2 && (v.startsWith("\"") && v.endsWith("\"") || v.startsWith("'") && v.endsWith("'"))) {
                v = v.substring(1, v.length() - 1);
            }
            if (k.equals("aws_access_key_id") && id == null) {
                id = v;
            } else if (k.equals("aws_secret_access_key") && secret == null) {
                secret = v;
            }
        }
        if (id == null || secret == null || id.isEmpty() || secret.isEmpty()) {
            throw BallastException.invalid("credentials file " + file + " must set aws_access_key_id and aws_secret_access_key");
        }
        return new S3Credentials(id, secret);
    }
}
