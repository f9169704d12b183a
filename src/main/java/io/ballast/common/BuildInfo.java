package io.ballast.common;

import java.io.IOException;
import java.io.InputStream;
import java.util.Properties;

/**
 * What this build is: its release version and the cluster protocol it speaks, from
 * {@code io/ballast/build.properties} in the jar. A resource rather than constants so that the version
 * a node announces (on join, in its heartbeats, in {@code DATA/protocol-version}) is a property of the
 * build on the class path, as it is for a real upgrade to another jar.
 */
public final class BuildInfo {
    static final String RESOURCE = "/io/ballast/build.properties";
    /** The release version when the resource is missing (a class path without resources). */
    static final String FALLBACK_VERSION = "0.1.0-SNAPSHOT";

    private static final Properties PROPS = load();

    private BuildInfo() {}

    private static Properties load() {
        Properties p = new Properties();
        try (InputStream in = BuildInfo.class.getResourceAsStream(RESOURCE)) {
            if (in != null) {
                p.load(in);
            }
        } catch (IOException e) {
            // a build without the file announces the defaults below
        }
        return p;
    }

    /** The release version, e.g. {@code 0.1.0-SNAPSHOT}. */
    public static String version() {
        return PROPS.getProperty("version", FALLBACK_VERSION).strip();
    }

    /** The cluster protocol this build speaks (1.0 when the build does not say). */
    static ProtocolVersion clusterProtocol() {
        String v = PROPS.getProperty("clusterProtocol");
        return v == null ? new ProtocolVersion(1, 0) : ProtocolVersion.parse(v.strip());
    }
}
