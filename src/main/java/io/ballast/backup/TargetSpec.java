package io.ballast.backup;

import io.ballast.common.BallastException;
import io.ballast.common.Names;
import java.net.URI;

/**
 * A backup target as the cluster stores it (Raft): where the objects go and where each node finds
 * the secrets: the paths of the credentials and key files, or the names of environment variables.
 * Never the secrets themselves.
 *
 * @param url {@code s3://BUCKET/PREFIX}
 * @param endpoint the S3 endpoint URL (null: AWS's for the region)
 * @param credentialsFile a file with {@code aws_access_key_id} and {@code aws_secret_access_key} (null: environment)
 * @param accessKeyEnv / secretKeyEnv environment variable names used when there is no file
 * @param keyFile the operator's backup key file (32 random bytes, or 64 hex digits)
 * @param chunkSizeBytes 0: the default (1 MiB)
 */
public record TargetSpec(String name, String url, String endpoint, String region, String credentialsFile,
        String accessKeyEnv, String secretKeyEnv, String keyFile, int chunkSizeBytes, String createdAt) {

    public static final String DEFAULT_ACCESS_KEY_ENV = "AWS_ACCESS_KEY_ID";
    public static final String DEFAULT_SECRET_KEY_ENV = "AWS_SECRET_ACCESS_KEY";

    /** Checks every field and fills defaults; INVALID_ARGUMENT names the first bad one. */
    public TargetSpec validate() {
        Names.requireVolumeName(name);
        bucket();
        if (endpoint != null) {
            URI e;
            try {
                e = URI.create(endpoint);
            } catch (IllegalArgumentException ex) {
                throw BallastException.invalid("bad endpoint " + endpoint + ": " + ex.getMessage());
            }
            if (!("http".equals(e.getScheme()) || "https".equals(e.getScheme())) || e.getHost() == null) {
                throw BallastException.invalid("endpoint must be an http:// or https:// URL, got " + endpoint);
            }
            if (e.getUserInfo() != null) {
                throw BallastException.invalid("endpoint must not carry credentials; use --credentials-file");
            }
        }
        if (region == null || !region.matches("[a-z0-9-]{1,32}")) {
            throw BallastException.invalid("region must be like us-east-1, got " + region);
        }
        if (keyFile == null || keyFile.isBlank() || !keyFile.startsWith("/")) {
            throw BallastException.invalid("a backup target needs --key-file with an absolute path (the same path on every node)");
        }
        if (credentialsFile != null && !credentialsFile.startsWith("/")) {
            throw BallastException.invalid("--credentials-file must be an absolute path (the same path on every node)");
        }
        String ak = accessKeyEnv == null ? DEFAULT_ACCESS_KEY_ENV : accessKeyEnv;
        String sk = secretKeyEnv == null ? DEFAULT_SECRET_KEY_ENV : secretKeyEnv;
        if (!ak.matches("[A-Za-z_][A-Za-z0-9_]{0,63}") || !sk.matches("[A-Za-z_][A-Za-z0-9_]{0,63}")) {
            throw BallastException.invalid("environment variable names must be like AWS_ACCESS_KEY_ID");
        }
        int cs = chunkSizeBytes == 0 ? BackupWriter.Options.DEFAULT_CHUNK_BYTES : chunkSizeBytes;
        new BackupWriter.Options(cs, 1, 0, BackupWriter.Options.DEFAULT.gcWait(), BackupWriter.Options.DEFAULT.markerRefresh(),
                BackupWriter.Options.DEFAULT.staleAfter(), false);
        return new TargetSpec(name, url, endpoint, region, credentialsFile, ak, sk, keyFile, cs, createdAt);
    }

    public String bucket() {
        return parts()[0];
    }

    /** The key prefix, empty or ending with '/'. */
    public String prefix() {
        String p = parts()[1];
        return p.isEmpty() || p.endsWith("/") ? p : p + "/";
    }

    private String[] parts() {
        if (url == null || !url.startsWith("s3://")) {
            throw BallastException.invalid("a backup target URL looks like s3://BUCKET/PREFIX, got " + url);
        }
        String rest = url.substring(5);
        int slash = rest.indexOf('/');
        String bucket = slash < 0 ? rest : rest.substring(0, slash);
        String prefix = slash < 0 ? "" : rest.substring(slash + 1);
        if (!bucket.matches("[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")) {
            throw BallastException.invalid("bad bucket name " + bucket + " in " + url + " (3-63 of a-z 0-9 . -)");
        }
        if (prefix.contains("//") || prefix.startsWith("/") || prefix.length() > 512) {
            throw BallastException.invalid("bad prefix " + prefix + " in " + url);
        }
        return new String[] {bucket, prefix};
    }
}
