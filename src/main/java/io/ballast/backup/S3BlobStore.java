package io.ballast.backup;

import io.ballast.common.BallastException;
import io.ballast.common.ErrorCode;
import java.net.URI;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;
import software.amazon.awssdk.core.checksums.RequestChecksumCalculation;
import software.amazon.awssdk.core.checksums.ResponseChecksumValidation;
import software.amazon.awssdk.core.exception.SdkClientException;
import software.amazon.awssdk.core.exception.SdkException;
import software.amazon.awssdk.core.sync.RequestBody;
import software.amazon.awssdk.http.urlconnection.UrlConnectionHttpClient;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.model.ListObjectsV2Request;
import software.amazon.awssdk.services.s3.model.ListObjectsV2Response;
import software.amazon.awssdk.services.s3.model.NoSuchKeyException;
import software.amazon.awssdk.services.s3.model.S3Exception;
import software.amazon.awssdk.services.s3.model.S3Object;

/**
 * A target's objects in S3 (or anything that speaks it: path-style addressing, a custom endpoint),
 * through the AWS SDK v2's synchronous client on the JDK's HttpURLConnection (no Netty, no Apache
 * HTTP). Errors become BallastExceptions whose messages name the bucket and endpoint, never a
 * credential.
 */
public final class S3BlobStore implements BlobStore {
    private final S3Client s3;
    private final String bucket;
    private final String prefix;
    private final String where;

    public S3BlobStore(TargetSpec spec, S3Credentials credentials) {
        this.bucket = spec.bucket();
        this.prefix = spec.prefix();
        this.where = spec.url() + (spec.endpoint() == null ? "" : " at " + spec.endpoint());
        var b = S3Client.builder()
                .region(Region.of(spec.region()))
                .forcePathStyle(true)
                // S3-compatible servers differ on the newer flexible checksums; GCM already authenticates every object
                .requestChecksumCalculation(RequestChecksumCalculation.WHEN_REQUIRED)
                .responseChecksumValidation(ResponseChecksumValidation.WHEN_REQUIRED)
                .credentialsProvider(StaticCredentialsProvider.create(
                        AwsBasicCredentials.create(credentials.accessKeyId(), credentials.secretAccessKey())))
                .httpClient(UrlConnectionHttpClient.builder()
                        .connectionTimeout(Duration.ofSeconds(5))
                        .socketTimeout(Duration.ofSeconds(60))
                        .build())
                .overrideConfiguration(c -> c.apiCallTimeout(Duration.ofMinutes(2)));
        if (spec.endpoint() != null) {
            b.endpointOverride(URI.create(spec.endpoint()));
        }
        this.s3 = b.build();
    }

    @Override
    public String describe() {
        return where;
    }

    @Override
    public void put(String key, byte[] bytes) {
        call("store " + key, () -> s3.putObject(r -> r.bucket(bucket).key(prefix + key).contentLength((long) bytes.length),
                RequestBody.fromBytes(bytes)));
    }

    @Override
    public byte[] get(String key) {
        return call("read " + key, () -> s3.getObjectAsBytes(r -> r.bucket(bucket).key(prefix + key)).asByteArray());
    }

    @Override
    public boolean exists(String key) {
        try {
            call("look up " + key, () -> s3.headObject(r -> r.bucket(bucket).key(prefix + key)));
            return true;
        } catch (BallastException e) {
            if (e.code() == ErrorCode.NOT_FOUND) {
                return false;
            }
            throw e;
        }
    }

    @Override
    public List<ObjectInfo> list(String keyPrefix) {
        List<ObjectInfo> out = new ArrayList<>();
        String token = null;
        do {
            String t = token;
            ListObjectsV2Response page = call("list " + keyPrefix, () -> s3.listObjectsV2(ListObjectsV2Request.builder()
                    .bucket(bucket).prefix(prefix + keyPrefix).continuationToken(t).build()));
            for (S3Object o : page.contents()) {
                if (o.key().endsWith("/")) {
                    continue; // a directory placeholder (S3Proxy's file system backend lists them)
                }
                out.add(new ObjectInfo(o.key().substring(prefix.length()), o.size(), o.lastModified()));
            }
            token = Boolean.TRUE.equals(page.isTruncated()) ? page.nextContinuationToken() : null;
        } while (token != null);
        return out;
    }

    @Override
    public void delete(String key) {
        call("delete " + key, () -> s3.deleteObject(r -> r.bucket(bucket).key(prefix + key)));
    }

    @Override
    public void close() {
        s3.close();
    }

    private <T> T call(String what, java.util.function.Supplier<T> op) {
        try {
            return op.get();
        } catch (NoSuchKeyException e) {
            throw BallastException.notFound("no object " + what.substring(what.indexOf(' ') + 1) + " in " + where);
        } catch (S3Exception e) {
            String code = e.awsErrorDetails() == null ? null : e.awsErrorDetails().errorCode();
            int status = e.statusCode();
            if ("NoSuchBucket".equals(code)) {
                throw BallastException.invalid("bucket " + bucket + " does not exist (" + where + ")");
            }
            if (status == 404) {
                throw BallastException.notFound("no object " + what.substring(what.indexOf(' ') + 1) + " in " + where);
            }
            if (status == 403 || status == 401 || "InvalidAccessKeyId".equals(code) || "SignatureDoesNotMatch".equals(code)) {
                throw BallastException.invalid("the S3 endpoint refused the credentials for " + where + " (" + status
                        + (code == null ? "" : " " + code) + "); check the target's credentials");
            }
            throw new BallastException(ErrorCode.IO_ERROR, "S3 could not " + what + " in " + where + ": " + status
                    + (code == null ? "" : " " + code), e);
        } catch (SdkClientException e) {
            throw new BallastException(ErrorCode.UNAVAILABLE, "cannot reach the S3 endpoint of " + where + " to " + what + ": "
                    + rootMessage(e), e);
        } catch (SdkException e) {
            throw new BallastException(ErrorCode.IO_ERROR, "S3 could not " + what + " in " + where + ": " + rootMessage(e), e);
        }
    }

    private static String rootMessage(Throwable t) {
        Throwable c = t;
        while (c.getCause() != null && c.getCause() != c) {
            c = c.getCause();
        }
        return c.getClass().getSimpleName() + (c.getMessage() == null ? "" : ": " + c.getMessage());
    }
}
