package io.ballast.deploy;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import io.ballast.integrations.csi.CsiConstants;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;
import picocli.CommandLine.Model.OptionSpec;

/**
 * The deployment files in deploy/ agree with the code: Kubernetes objects and their API versions,
 * the driver name and StorageClass parameters ({@link CsiConstants}), the CSI socket paths the node
 * daemon, the registrar and the controller sidecars use, the options given to
 * {@code ballast node start} (from picocli's model of the real command), the Nomad job and volume,
 * and that the image runs the release (bin/ballast and its runtime). Parses files only; runs nothing.
 */
class ManifestsTest {

    private static final Path ROOT = Path.of(System.getProperty("user.dir"));
    private static final Path KUBE = ROOT.resolve("deploy/kubernetes");
    private static final Path NOMAD = ROOT.resolve("deploy/nomad");
    private static final Path IMAGE = ROOT.resolve("deploy/image");

    /** Where the kubelet finds the driver's socket on the host (and the registrar registers it). */
    private static final String HOST_PLUGIN_DIR = "/var/lib/kubelet/plugins/" + CsiConstants.DRIVER_NAME;
    private static final String HOST_SOCKET = HOST_PLUGIN_DIR + "/csi.sock";
    private static final String NAMESPACE = "ballast-system";
    private static final String CSI_ENDPOINT = "--csi-endpoint";

    /** kind -> the API version the manifests must use for it. */
    private static final Map<String, String> API_VERSIONS = Map.ofEntries(
            Map.entry("Namespace", "v1"),
            Map.entry("ServiceAccount", "v1"),
            Map.entry("ConfigMap", "v1"),
            Map.entry("Pod", "v1"),
            Map.entry("CSIDriver", "storage.k8s.io/v1"),
            Map.entry("StorageClass", "storage.k8s.io/v1"),
            Map.entry("DaemonSet", "apps/v1"),
            Map.entry("Deployment", "apps/v1"),
            Map.entry("ClusterRole", "rbac.authorization.k8s.io/v1"),
            Map.entry("ClusterRoleBinding", "rbac.authorization.k8s.io/v1"),
            Map.entry("Role", "rbac.authorization.k8s.io/v1"),
            Map.entry("RoleBinding", "rbac.authorization.k8s.io/v1"),
            Map.entry("VolumeSnapshotClass", "snapshot.storage.k8s.io/v1"),
            Map.entry("Kustomization", "kustomize.config.k8s.io/v1beta1"),
            Map.entry("Component", "kustomize.config.k8s.io/v1alpha1"));
    private static final Set<String> CLUSTER_SCOPED = Set.of("Namespace", "CSIDriver", "StorageClass", "ClusterRole",
            "ClusterRoleBinding", "VolumeSnapshotClass");
    private static final Set<String> KUSTOMIZE_KINDS = Set.of("Kustomization", "Component");

    /** One YAML document of a file under deploy/kubernetes. */
    record Doc(Path file, int index, JsonNode node) {
        String kind() {
            return node.path("kind").asText();
        }

        String name() {
            return node.path("metadata").path("name").asText();
        }

        @Override
        public String toString() {
            return KUBE.relativize(file) + "#" + index + " (" + kind() + " " + name() + ")";
        }
    }

    private static List<Doc> docs;
    private static Set<String> nodeStartOptions;

    @BeforeAll
    static void load() throws Exception {
        ObjectMapper yaml = new ObjectMapper(new YAMLFactory());
        docs = new ArrayList<>();
        List<Path> files;
        try (Stream<Path> s = Files.walk(KUBE)) {
            files = s.filter(p -> p.toString().endsWith(".yaml") || p.toString().endsWith(".yml")).sorted().toList();
        }
        assertThat(files).as("YAML files in " + KUBE).isNotEmpty();
        for (Path f : files) {
            int i = 0;
            try (var it = yaml.readerFor(JsonNode.class).readValues(f.toFile())) {
                while (it.hasNextValue()) {
                    JsonNode n = (JsonNode) it.nextValue();
                    if (n != null && !n.isNull() && !n.isMissingNode()) {
                        docs.add(new Doc(f, i, n));
                    }
                    i++;
                }
            }
        }
        nodeStartOptions = nodeStartOptionNames();
    }

    /** The option names of {@code ballast node start}, from the command's picocli model. */
    private static Set<String> nodeStartOptionNames() throws Exception {
        // BallastCli's constructor is package-private (the CLI is built through BallastCli.run).
        var ctor = io.ballast.cli.BallastCli.class.getDeclaredConstructor(PrintWriter.class, PrintWriter.class, Map.class);
        ctor.setAccessible(true);
        PrintWriter sink = new PrintWriter(new StringWriter());
        var tree = io.ballast.cli.BallastCli.class.getDeclaredMethod("commandLine", io.ballast.cli.BallastCli.class);
        tree.setAccessible(true);
        CommandLine cli = (CommandLine) tree.invoke(null, ctor.newInstance(sink, sink, Map.of()));
        Set<String> names = new TreeSet<>();
        for (OptionSpec o : cli.getSubcommands().get("node").getSubcommands().get("start").getCommandSpec().options()) {
            names.addAll(List.of(o.names()));
        }
        assertThat(names).as("picocli model of `ballast node start`").contains("--data-dir", "--join");
        return names;
    }

    // ---- objects ------------------------------------------------------------------------------

    @Test
    void everyDocumentHasAKnownKindAndApiVersionAndAName() {
        for (Doc d : docs) {
            String kind = d.kind();
            assertThat(kind).as(d + ": kind").isNotBlank();
            assertThat(API_VERSIONS).as(d + ": a kind these manifests may use").containsKey(kind);
            assertThat(d.node().path("apiVersion").asText()).as(d + ": apiVersion").isEqualTo(API_VERSIONS.get(kind));
            if (KUSTOMIZE_KINDS.contains(kind)) {
                continue;
            }
            assertThat(d.name()).as(d + ": metadata.name").isNotBlank();
            String ns = d.node().path("metadata").path("namespace").asText();
            if (CLUSTER_SCOPED.contains(kind)) {
                assertThat(ns).as(d + ": cluster-scoped, no namespace").isEmpty();
            } else {
                assertThat(ns).as(d + ": namespace").isEqualTo(NAMESPACE);
            }
        }
        Set<String> kinds = new HashSet<>();
        docs.forEach(d -> kinds.add(d.kind()));
        assertThat(kinds).contains("Namespace", "CSIDriver", "StorageClass", "DaemonSet", "Deployment", "ServiceAccount",
                "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "ConfigMap", "VolumeSnapshotClass");
        assertThat(only("Namespace").name()).isEqualTo(NAMESPACE);
    }

    @Test
    void kustomizationsListEveryManifestBesideThemAndNothingMissing() throws IOException {
        for (Doc k : docs) {
            if (!KUSTOMIZE_KINDS.contains(k.kind())) {
                continue;
            }
            Path dir = k.file().getParent();
            Set<String> listed = new TreeSet<>();
            k.node().path("resources").forEach(r -> listed.add(r.asText()));
            k.node().path("patches").forEach(p -> listed.add(p.path("path").asText()));
            k.node().path("components").forEach(c -> listed.add(c.asText()));
            for (String entry : listed) {
                assertThat(dir.resolve(entry)).as(k + " lists " + entry).exists();
            }
            try (Stream<Path> s = Files.list(dir)) {
                for (Path f : s.filter(p -> p.toString().endsWith(".yaml")).toList()) {
                    String n = f.getFileName().toString();
                    if (!n.equals("kustomization.yaml")) {
                        assertThat(listed).as(k + " lists " + n).contains(n);
                    }
                }
            }
        }
        Doc base = docs.stream().filter(d -> d.file().equals(KUBE.resolve("kustomization.yaml"))).findFirst().orElseThrow();
        assertThat(base.kind()).isEqualTo("Kustomization");
        Doc snapshots = docs.stream().filter(d -> d.file().equals(KUBE.resolve("snapshots/kustomization.yaml"))).findFirst()
                .orElseThrow();
        assertThat(snapshots.kind()).isEqualTo("Component");
    }

    @Test
    void driverNameIsTheOneTheDriverAnswers() {
        Doc driver = only("CSIDriver");
        assertThat(driver.name()).isEqualTo(CsiConstants.DRIVER_NAME);
        JsonNode spec = driver.node().path("spec");
        assertThat(spec.path("attachRequired").asBoolean(false)).as("attachRequired: publish is where Ballast fences").isTrue();
        assertThat(spec.path("podInfoOnMount").isBoolean() && !spec.path("podInfoOnMount").asBoolean()).isTrue();
        assertThat(texts(spec.path("volumeLifecycleModes"))).containsExactly("Persistent");
        assertThat(spec.path("fsGroupPolicy").asText()).isEqualTo("File");

        for (Doc sc : all("StorageClass")) {
            assertThat(sc.node().path("provisioner").asText()).as(sc + ": provisioner").isEqualTo(CsiConstants.DRIVER_NAME);
        }
        for (Doc vsc : all("VolumeSnapshotClass")) {
            assertThat(vsc.node().path("driver").asText()).as(vsc + ": driver").isEqualTo(CsiConstants.DRIVER_NAME);
        }
    }

    @Test
    void storageClassesUseOnlyParametersTheDriverAccepts() {
        Map<String, Doc> byName = new LinkedHashMap<>();
        for (Doc sc : all("StorageClass")) {
            byName.put(sc.name(), sc);
            JsonNode params = sc.node().path("parameters");
            params.fieldNames().forEachRemaining(k ->
                    assertThat(CsiConstants.PARAMETERS).as(sc + ": parameter '" + k + "' is one the driver accepts").contains(k));
            assertThat(params.path(CsiConstants.PARAM_REPL).isTextual()).as(sc + ": parameters are strings").isTrue();
            assertThat(Integer.parseInt(params.path(CsiConstants.PARAM_REPL).asText())).isBetween(1, 3);
            if (params.has(CsiConstants.PARAM_FS_TYPE)) {
                assertThat(params.path(CsiConstants.PARAM_FS_TYPE).asText()).isIn("ext4", "xfs");
            }
            assertThat(sc.node().path("allowVolumeExpansion").asBoolean(false)).as(sc + ": expansion").isTrue();
            assertThat(sc.node().path("volumeBindingMode").asText()).isEqualTo("WaitForFirstConsumer");
        }
        assertThat(byName).containsOnlyKeys("ballast-3r", "ballast-1r");
        assertThat(byName.get("ballast-3r").node().path("parameters").path("repl").asText()).isEqualTo("3");
        assertThat(byName.get("ballast-1r").node().path("parameters").path("repl").asText()).isEqualTo("1");
    }

    // ---- sockets ------------------------------------------------------------------------------

    @Test
    void nodeDaemonServesCsiOnTheSocketTheKubeletIsToldAbout() {
        Doc ds = only("DaemonSet");
        JsonNode pod = ds.node().path("spec").path("template").path("spec");
        assertThat(pod.path("hostNetwork").asBoolean(false)).as("hostNetwork").isTrue();
        JsonNode ballast = container(pod, "ballast");
        assertThat(ballast.path("securityContext").path("privileged").asBoolean(false)).as("privileged").isTrue();

        String endpoint = optionValue(texts(ballast.path("args")), CSI_ENDPOINT);
        assertThat(endpoint).as("ballast container's " + CSI_ENDPOINT).isNotNull().startsWith("unix://");
        String socket = endpoint.substring("unix://".length());
        assertThat(socket).startsWith("/");
        String hostSocket = hostPathOf(pod, ballast, socket);
        assertThat(hostSocket).as("the ballast container's socket, on the host").isEqualTo(HOST_SOCKET);

        JsonNode registrar = container(pod, "node-driver-registrar");
        List<String> regArgs = texts(registrar.path("args"));
        assertThat(optionValue(regArgs, "--kubelet-registration-path")).isEqualTo(HOST_SOCKET);
        String regSocket = optionValue(regArgs, "--csi-address");
        assertThat(hostPathOf(pod, registrar, regSocket)).as("the registrar's --csi-address on the host").isEqualTo(HOST_SOCKET);
        assertThat(hostPathMount(pod, registrar, "/registration")).isEqualTo("/var/lib/kubelet/plugins_registry");

        // staging and publish paths are under /var/lib/kubelet: the daemon's mounts must reach the host
        JsonNode kubeletMount = mountAt(ballast, "/var/lib/kubelet");
        assertThat(kubeletMount).as("/var/lib/kubelet mounted in the ballast container").isNotNull();
        assertThat(kubeletMount.path("mountPropagation").asText()).isEqualTo("Bidirectional");
        assertThat(hostPathMount(pod, ballast, "/var/lib/kubelet")).isEqualTo("/var/lib/kubelet");
        assertThat(hostPathMount(pod, ballast, "/dev")).isEqualTo("/dev");
        assertThat(hostPathMount(pod, ballast, "/var/lib/ballast")).isEqualTo("/var/lib/ballast");
        assertThat(optionValue(texts(ballast.path("args")), "--data-dir")).isEqualTo("/var/lib/ballast");
    }

    @Test
    void everySidecarReachesTheNodeDaemonsSocketThroughAMountedHostPath() {
        Map<String, String> images = new LinkedHashMap<>();
        for (Doc w : workloads()) {
            JsonNode pod = podSpec(w);
            for (JsonNode c : pod.path("containers")) {
                List<String> args = texts(c.path("args"));
                String address = optionValue(args, "--csi-address");
                if (address == null) {
                    continue;
                }
                String name = c.path("name").asText();
                assertThat(hostPathOf(podWithBaseVolumes(w), c, address))
                        .as(w + " container " + name + ": --csi-address " + address + " on the host").isEqualTo(HOST_SOCKET);
                String image = c.path("image").asText();
                assertThat(image).as(w + " " + name + " image").matches("registry\\.k8s\\.io/sig-storage/[a-z-]+:v\\d+\\.\\d+\\.\\d+");
                images.put(w.kind() + "/" + name, image.substring(image.lastIndexOf('/') + 1, image.indexOf(':', image.lastIndexOf('/'))));
                if (w.kind().equals("Deployment") && !image.contains("/livenessprobe:")) {
                    assertThat(args).as(w + " " + name + ": leader election").contains("--leader-election");
                }
            }
        }
        assertThat(images.values()).contains("csi-node-driver-registrar", "livenessprobe", "csi-provisioner", "csi-attacher",
                "csi-resizer", "csi-snapshotter");

        JsonNode controller = podSpec(all("Deployment").stream().filter(d -> d.node().path("spec").has("replicas")).findFirst()
                .orElseThrow());
        List<String> provisioner = texts(container(controller, "csi-provisioner").path("args"));
        assertThat(provisioner).contains("--feature-gates=Topology=true", "--extra-create-metadata", "--leader-election");
        // the controller pod has no ballast container: it must land where a node daemon serves the socket
        assertThat(controller.path("affinity").path("podAffinity").toString()).contains("ballast-node");
    }

    // ---- ballast node start options --------------------------------------------------------------

    @Test
    void ballastContainersPassOnlyOptionsThatNodeStartHas() {
        int checked = 0;
        for (Doc w : workloads()) {
            JsonNode pod = podSpec(w);
            for (JsonNode c : pod.path("containers")) {
                if (!c.path("name").asText().equals("ballast")) {
                    continue;
                }
                List<String> args = texts(c.path("args"));
                assertThat(args.subList(0, 2)).as(w + ": ballast container runs `node start`").containsExactly("node", "start");
                assertRealNodeStartOptions(w.toString(), args);
                // every $(VAR) the args use is defined in the container's env
                Set<String> env = new HashSet<>();
                c.path("env").forEach(e -> env.add(e.path("name").asText()));
                for (String a : args) {
                    Matcher m = Pattern.compile("\\$\\(([A-Z_][A-Z0-9_]*)\\)").matcher(a);
                    while (m.find()) {
                        assertThat(env).as(w + ": $(" + m.group(1) + ") in " + a).contains(m.group(1));
                    }
                }
                assertThat(env).as(w + ": the cluster token comes from the Secret").contains("BALLAST_CLUSTER_TOKEN");
                checked++;
            }
        }
        assertThat(checked).as("ballast containers (DaemonSet and bootstrap Pod)").isEqualTo(2);
    }

    @Test
    void bootstrapPodStartsTheSameMemberTheDaemonSetRestarts() {
        List<String> ds = texts(container(podSpec(only("DaemonSet")), "ballast").path("args"));
        List<String> boot = texts(container(podSpec(only("Pod")), "ballast").path("args"));
        assertThat(optionValue(boot, "--join")).as("the bootstrap node makes the cluster: no --join").isNull();
        assertThat(optionValue(ds, "--join")).isNotNull();
        // DATA/cluster.json records the node id and Raft address; the DaemonSet must restart with the same
        for (String opt : List.of("--data-dir", "--node-id", "--raft-listen", "--api-listen", "--replication-listen")) {
            assertThat(optionValue(boot, opt)).as(opt).isNotNull().isEqualTo(optionValue(ds, opt));
        }
        assertThat(hostPathMount(podSpec(only("Pod")), container(podSpec(only("Pod")), "ballast"), "/var/lib/ballast"))
                .isEqualTo("/var/lib/ballast");
    }

    @Test
    void nodesRunTlsWithTheTokenAndTheCaFromSecrets() throws IOException {
        for (Doc w : workloads()) {
            for (JsonNode c : podSpec(w).path("containers")) {
                assertThat(texts(c.path("args"))).as(w + " " + c.path("name").asText() + ": plaintext is for benchmarks")
                        .doesNotContain("--insecure");
                // the API answers HTTPS only: a plain HTTP probe of it would never pass
                for (String probe : List.of("readinessProbe", "livenessProbe", "startupProbe")) {
                    JsonNode get = c.path(probe).path("httpGet");
                    if (get.path("port").asText().equals("api")) {
                        assertThat(get.path("scheme").asText()).as(w + " " + probe + " of the API").isEqualTo("HTTPS");
                    }
                }
                if (c.path("name").asText().equals("ballast")) {
                    JsonNode token = null;
                    for (JsonNode e : c.path("env")) {
                        if (e.path("name").asText().equals("BALLAST_CLUSTER_TOKEN")) {
                            token = e.path("valueFrom").path("secretKeyRef");
                        }
                    }
                    assertThat(token).as(w + ": the join token from a Secret").isNotNull();
                    assertThat(token.path("name").asText()).isEqualTo("ballast-cluster-token");
                }
            }
        }
        // the bootstrap Pod takes the operator's CA from the ballast-ca Secret, read-only; nothing else mounts it
        JsonNode pod = podSpec(only("Pod"));
        JsonNode boot = container(pod, "ballast");
        List<String> args = texts(boot.path("args"));
        for (String opt : List.of("--ca-cert", "--ca-key")) {
            String file = optionValue(args, opt);
            assertThat(file).as("bootstrap " + opt).isNotNull();
            JsonNode m = mountAt(boot, file.substring(0, file.lastIndexOf('/')));
            assertThat(m).as(opt + " " + file + " lies in a mounted volume").isNotNull();
            assertThat(m.path("readOnly").asBoolean()).as(opt + " mount read-only").isTrue();
            assertThat(secretOf(pod, m.path("name").asText())).as(opt + " comes from a Secret").isEqualTo("ballast-ca");
        }
        for (Doc w : workloads()) {
            if (!w.kind().equals("Pod")) {
                for (JsonNode v : podSpec(w).path("volumes")) {
                    assertThat(v.path("secret").path("secretName").asText()).as(w + ": the CA key is for the bootstrap Pod only")
                            .isNotEqualTo("ballast-ca");
                }
            }
        }
        String job = stripHclComments(Files.readString(NOMAD.resolve("ballast-csi.nomad.hcl")));
        assertThat(hclList(job, "args")).as("Nomad job").doesNotContain("--insecure");
        assertThat(block(job, "template")).contains("BALLAST_CLUSTER_TOKEN={{ with nomadVar \"nomad/jobs/ballast-csi\" }}");
    }

    private static String secretOf(JsonNode pod, String volume) {
        for (JsonNode v : pod.path("volumes")) {
            if (v.path("name").asText().equals(volume)) {
                return v.path("secret").path("secretName").asText(null);
            }
        }
        return null;
    }

    @Test
    void serviceAccountsAndRolesReferToObjectsThatExist() {
        Set<String> accounts = names("ServiceAccount");
        for (Doc w : workloads()) {
            String sa = podSpec(w).path("serviceAccountName").asText();
            if (!sa.isEmpty()) {
                assertThat(accounts).as(w + ": serviceAccountName").contains(sa);
            }
        }
        for (String bindingKind : List.of("ClusterRoleBinding", "RoleBinding")) {
            for (Doc b : all(bindingKind)) {
                JsonNode ref = b.node().path("roleRef");
                String roleKind = ref.path("kind").asText();
                assertThat(names(roleKind)).as(b + ": roleRef").contains(ref.path("name").asText());
                for (JsonNode s : b.node().path("subjects")) {
                    assertThat(s.path("kind").asText()).isEqualTo("ServiceAccount");
                    assertThat(accounts).as(b + ": subject").contains(s.path("name").asText());
                    assertThat(s.path("namespace").asText()).isEqualTo(NAMESPACE);
                }
            }
        }
        // each controller-side sidecar has its role, bound to the controller's account
        Set<String> bound = new HashSet<>();
        all("ClusterRoleBinding").forEach(b -> bound.add(b.node().path("roleRef").path("name").asText()));
        assertThat(bound).contains("ballast-external-provisioner", "ballast-external-attacher", "ballast-external-resizer",
                "ballast-external-snapshotter");
    }

    // ---- Nomad ----------------------------------------------------------------------------------

    @Test
    void nomadPluginJobAndVolumeAgree() throws IOException {
        String job = stripHclComments(Files.readString(NOMAD.resolve("ballast-csi.nomad.hcl")));
        assertThat(job).containsPattern("type\\s*=\\s*\"system\"");
        String plugin = block(job, "csi_plugin");
        String pluginId = attr(plugin, "id");
        assertThat(pluginId).isEqualTo("ballast");
        assertThat(attr(plugin, "type")).isEqualTo("monolith");
        String mountDir = attr(plugin, "mount_dir");
        assertThat(mountDir).isEqualTo("/csi");
        assertThat(block(job, "config")).containsPattern("privileged\\s*=\\s*true");

        List<String> args = hclList(job, "args");
        assertThat(args.subList(0, 2)).containsExactly("node", "start");
        // Nomad expects the plugin's socket at <mount_dir>/csi.sock
        assertThat(optionValue(args, CSI_ENDPOINT)).isEqualTo("unix://" + mountDir + "/csi.sock");
        assertRealNodeStartOptions("ballast-csi.nomad.hcl", args);

        String volume = stripHclComments(Files.readString(NOMAD.resolve("volume.hcl")));
        assertThat(attr(volume, "type")).isEqualTo("csi");
        assertThat(attr(volume, "plugin_id")).isEqualTo(pluginId);
        String capability = block(volume, "capability");
        assertThat(attr(capability, "access_mode")).isEqualTo("single-node-writer");
        assertThat(attr(capability, "attachment_mode")).isEqualTo("file-system");
        Matcher p = Pattern.compile("(?m)^\\s*([A-Za-z_][A-Za-z0-9_]*)\\s*=").matcher(block(volume, "parameters"));
        int params = 0;
        while (p.find()) {
            assertThat(CsiConstants.PARAMETERS).as("volume.hcl parameter " + p.group(1)).contains(p.group(1));
            params++;
        }
        assertThat(params).isPositive();
        assertThat(attr(block(volume, "parameters"), "repl")).isEqualTo("3");

        String pg = stripHclComments(Files.readString(NOMAD.resolve("postgres.nomad.hcl")));
        assertThat(attr(block(pg, "volume \"data\""), "source")).isEqualTo(attr(volume, "id"));
    }

    // ---- image ----------------------------------------------------------------------------------

    @Test
    void theImageRunsTheReleaseAndItsLauncherNotASecondCopy() throws IOException {
        // one launcher (bin/ballast) with the node's JVM defaults: the .deb and both image builds ship it
        assertThat(IMAGE.resolve("ballast")).doesNotExist();
        String dockerfile = Files.readString(IMAGE.resolve("Dockerfile"));
        String offline = Files.readString(IMAGE.resolve("build-offline.sh"));
        assertThat(dockerfile).contains("COPY target/release/ballast/ /opt/ballast/",
                "ln -s /opt/ballast/bin/ballast /usr/local/bin/ballast");
        assertThat(offline).contains("target/release/ballast", "ln -s /opt/ballast/bin/ballast \"$R/usr/local/bin/ballast\"");
        assertThat(Files.readString(ROOT.resolve("packaging/build-release.sh")))
                .contains("install -m 0755 \"$ROOT/bin/ballast\" \"$TREE/bin/ballast\"");
    }

    @Test
    void dockerfileAndOfflineBuildMakeTheSameImage() throws IOException {
        String dockerfile = Files.readString(IMAGE.resolve("Dockerfile"));
        String offline = Files.readString(IMAGE.resolve("build-offline.sh"));
        assertThat(dockerfile).containsPattern("(?m)^FROM debian:bookworm-slim\\s*$"); // the release brings its Java
        assertThat(dockerfile).contains("ENTRYPOINT [\"/usr/local/bin/ballast\"]");
        assertThat(offline).contains("ENTRYPOINT [\"/usr/local/bin/ballast\"]", "docker import", "/opt/ballast/runtime");
        // every Debian package the Dockerfile installs is one the offline build takes its tools from
        Matcher install = Pattern.compile("apt-get install[^\\n]*\\\\\\n\\s*([^\\n]+)").matcher(dockerfile);
        assertThat(install.find()).isTrue();
        for (String pkg : install.group(1).replace("\\", "").trim().split("\\s+")) {
            assertThat(offline).as("build-offline.sh takes tools from " + pkg).containsPattern("=" + Pattern.quote(pkg) + "\\b");
        }
    }

    // ---- helpers --------------------------------------------------------------------------------

    private void assertRealNodeStartOptions(String where, List<String> args) {
        for (String a : args) {
            if (!a.startsWith("--")) {
                continue;
            }
            String name = a.contains("=") ? a.substring(0, a.indexOf('=')) : a;
            // --csi-endpoint is added to `ballast node start` by the CSI driver change; until that is
            // merged it is missing from the model, and once it is there it is checked like any other.
            if (name.equals(CSI_ENDPOINT) && !nodeStartOptions.contains(CSI_ENDPOINT)) {
                continue;
            }
            assertThat(nodeStartOptions).as(where + ": `ballast node start` has option " + name).contains(name);
        }
    }

    private static List<Doc> all(String kind) {
        return docs.stream().filter(d -> d.kind().equals(kind)).toList();
    }

    private static Doc only(String kind) {
        List<Doc> found = all(kind);
        assertThat(found).as("exactly one " + kind).hasSize(1);
        return found.get(0);
    }

    private static Set<String> names(String kind) {
        Set<String> out = new HashSet<>();
        all(kind).forEach(d -> out.add(d.name()));
        return out;
    }

    /** DaemonSets, Deployments (including the snapshots component's patch) and Pods. */
    private static List<Doc> workloads() {
        return docs.stream().filter(d -> Set.of("DaemonSet", "Deployment", "Pod").contains(d.kind())).toList();
    }

    private static JsonNode podSpec(Doc w) {
        return w.kind().equals("Pod") ? w.node().path("spec") : w.node().path("spec").path("template").path("spec");
    }

    /**
     * The pod spec of {@code w}, with the volumes of the full object of the same kind and name when
     * {@code w} is a patch (the snapshots component adds a container that mounts the base's volume).
     */
    private static JsonNode podWithBaseVolumes(Doc w) {
        JsonNode pod = podSpec(w);
        if (pod.has("volumes")) {
            return pod;
        }
        return all(w.kind()).stream().filter(d -> d.name().equals(w.name()) && podSpec(d).has("volumes")).map(ManifestsTest::podSpec)
                .findFirst().orElseThrow(() -> new AssertionError(w + ": no volumes, and no full " + w.kind() + " with them"));
    }

    private static JsonNode container(JsonNode pod, String name) {
        for (JsonNode c : pod.path("containers")) {
            if (c.path("name").asText().equals(name)) {
                return c;
            }
        }
        return fail("no container " + name);
    }

    private static JsonNode mountAt(JsonNode container, String mountPath) {
        for (JsonNode m : container.path("volumeMounts")) {
            if (m.path("mountPath").asText().equals(mountPath)) {
                return m;
            }
        }
        return null;
    }

    /** The host path of the hostPath volume mounted at exactly {@code mountPath} in the container. */
    private static String hostPathMount(JsonNode pod, JsonNode container, String mountPath) {
        JsonNode m = mountAt(container, mountPath);
        assertThat(m).as(container.path("name").asText() + ": a volume mounted at " + mountPath).isNotNull();
        String volume = m.path("name").asText();
        for (JsonNode v : pod.path("volumes")) {
            if (v.path("name").asText().equals(volume)) {
                assertThat(v.has("hostPath")).as("volume " + volume + " is a hostPath").isTrue();
                return v.path("hostPath").path("path").asText();
            }
        }
        return fail("volume " + volume + " is not defined in the pod");
    }

    /**
     * The host path of a socket a container uses: its directory must be the mount path of a
     * hostPath volume, and the result is that host path plus the socket's file name.
     */
    private static String hostPathOf(JsonNode pod, JsonNode container, String socket) {
        int slash = socket.lastIndexOf('/');
        String dir = socket.substring(0, slash);
        return hostPathMount(pod, container, dir) + socket.substring(slash);
    }

    /** The value of {@code --name=value} or {@code --name value}; null when absent. */
    private static String optionValue(List<String> args, String name) {
        for (int i = 0; i < args.size(); i++) {
            String a = args.get(i);
            if (a.startsWith(name + "=")) {
                return a.substring(name.length() + 1);
            }
            if (a.equals(name) && i + 1 < args.size()) {
                return args.get(i + 1);
            }
        }
        return null;
    }

    private static List<String> texts(JsonNode array) {
        List<String> out = new ArrayList<>();
        array.forEach(n -> out.add(n.asText()));
        return out;
    }

    // A small reading of HCL, enough for these files: comments stripped, blocks by brace matching,
    // string attributes and one list of strings.

    private static String stripHclComments(String hcl) {
        StringBuilder out = new StringBuilder();
        for (String line : hcl.split("\n", -1)) {
            String t = line.stripLeading();
            if (!t.startsWith("#") && !t.startsWith("//")) {
                out.append(line).append('\n');
            }
        }
        return out.toString();
    }

    /** The body of the first block whose header is {@code header} (e.g. {@code csi_plugin}). */
    private static String block(String hcl, String header) {
        Matcher m = Pattern.compile("(?m)^\\s*" + Pattern.quote(header) + "\\s*\\{").matcher(hcl);
        assertThat(m.find()).as("block " + header).isTrue();
        int depth = 1;
        int i = m.end();
        for (; i < hcl.length() && depth > 0; i++) {
            char c = hcl.charAt(i);
            if (c == '{') {
                depth++;
            } else if (c == '}') {
                depth--;
            }
        }
        return hcl.substring(m.end(), i - 1);
    }

    /** The string value of {@code name = "value"} at the top of {@code body} (nested blocks left out). */
    private static String attr(String body, String name) {
        StringBuilder top = new StringBuilder();
        int depth = 0;
        for (char c : body.toCharArray()) {
            if (c == '{') {
                depth++;
            } else if (c == '}') {
                depth--;
            } else if (depth == 0) {
                top.append(c);
            }
        }
        Matcher m = Pattern.compile("(?m)^\\s*" + Pattern.quote(name) + "\\s*=\\s*\"([^\"]*)\"").matcher(top);
        assertThat(m.find()).as("attribute " + name).isTrue();
        return m.group(1);
    }

    /** The quoted strings of {@code name = [ ... ]}. */
    private static List<String> hclList(String hcl, String name) {
        Matcher m = Pattern.compile("(?s)\\b" + Pattern.quote(name) + "\\s*=\\s*\\[(.*?)\\]").matcher(hcl);
        assertThat(m.find()).as("list " + name).isTrue();
        List<String> out = new ArrayList<>();
        Matcher s = Pattern.compile("\"((?:[^\"\\\\]|\\\\.)*)\"").matcher(m.group(1));
        while (s.find()) {
            out.add(s.group(1));
        }
        return out;
    }
}
