package io.ballast.integrations.docker;

import io.ballast.common.BallastException;
import io.ballast.common.Names;
import io.ballast.cluster.Attachment;
import io.ballast.control.VolumeService;
import io.ballast.control.VolumeView;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/** In-memory control plane: attach with a mount directory records it (nothing is mounted). */
final class FakeVolumeService implements VolumeService {
    static final String NODE = "node-test";
    final Map<String, Long> sizes = new TreeMap<>();
    final Map<String, Attachment> attachments = new TreeMap<>();
    final List<String> calls = new ArrayList<>();
    volatile boolean failDetach;

    @Override
    public synchronized VolumeView create(String name, long sizeBytes) {
        Names.requireVolumeName(name);
        calls.add("create " + name + " " + sizeBytes);
        if (sizes.containsKey(name)) {
            throw BallastException.alreadyExists("volume " + name + " already exists");
        }
        sizes.put(name, sizeBytes);
        return view(name);
    }

    /** The placement hint of each create that gave one. */
    final Map<String, String> preferred = new TreeMap<>();

    @Override
    public synchronized VolumeView create(String name, long sizeBytes, int repl, String spreadBy, int minInSync,
            boolean waitReady, boolean encrypted, boolean shared, String preferNode) {
        VolumeView v = create(name, sizeBytes, repl, spreadBy, minInSync, waitReady, encrypted, shared);
        if (preferNode != null) {
            preferred.put(name, preferNode);
        }
        return v;
    }

    @Override
    public synchronized List<VolumeView> list() {
        return sizes.keySet().stream().map(this::view).toList();
    }

    @Override
    public synchronized VolumeView inspect(String name) {
        require(name);
        return view(name);
    }

    @Override
    public synchronized void delete(String name) {
        require(name);
        calls.add("delete " + name);
        if (attachments.containsKey(name)) {
            throw BallastException.conflict("volume " + name + " is attached; detach it first: `ballast volume detach " + name + "`");
        }
        sizes.remove(name);
    }

    @Override
    public synchronized VolumeView resize(String name, long newSizeBytes) {
        require(name);
        calls.add("resize " + name + " " + newSizeBytes);
        io.ballast.cluster.VolumeSizes.requireGrowth(name, sizes.get(name), newSizeBytes);
        sizes.put(name, newSizeBytes);
        return view(name);
    }

    @Override
    public synchronized Attachment attach(String name, Path mountDir) {
        require(name);
        calls.add("attach " + name + " " + mountDir);
        Attachment a = attachments.get(name);
        // another node's attachment is taken over, as from a dead holder
        if (a != null && a.nodeId().equals(NODE) && a.mounted() && !a.mountDir().equals(String.valueOf(mountDir))) {
            throw BallastException.conflict("volume " + name + " is already mounted at " + a.mountDir());
        }
        a = new Attachment(name, NODE, "nbd://x/" + name, "nbd+unix:///" + name, mountDir == null ? "none" : "nbdfuse-loop",
                mountDir == null ? null : mountDir.toString(), "/dev/loop9", 1L, "/f", "now");
        attachments.put(name, a);
        return a;
    }

    /** The file-system type asked with each attach that named one. */
    final List<String> fsTypes = new ArrayList<>();
    volatile String failAttach;

    @Override
    public synchronized Attachment attach(String name, Path mountDir, boolean force, io.ballast.attach.FsType fsType) {
        if (failAttach != null) {
            throw new BallastException(io.ballast.common.ErrorCode.IO_ERROR, failAttach);
        }
        if (fsType != null) {
            fsTypes.add(name + " " + fsType);
        }
        return attach(name, mountDir);
    }

    @Override
    public synchronized Attachment detach(String name) {
        require(name);
        calls.add("detach " + name);
        if (failDetach) {
            throw BallastException.conflict("cannot unmount: umount: target is busy");
        }
        Attachment a = attachments.remove(name);
        if (a == null) {
            throw BallastException.conflict("volume " + name + " is not attached");
        }
        return a;
    }

    /** The volume as attached and mounted at {@code mountDir} on another node. */
    synchronized void attachedElsewhere(String name, String node, String mountDir) {
        attachments.put(name, new Attachment(name, node, "nbd://y/" + name, "nbd+unix:///" + name, "nbdfuse-loop",
                mountDir, "/dev/loop8", 2L, "/g", "then"));
    }

    @Override
    public void shutdown() {}

    private void require(String name) {
        Names.requireVolumeName(name);
        if (!sizes.containsKey(name)) {
            throw BallastException.notFound("volume " + name + " not found");
        }
    }

    private VolumeView view(String name) {
        return new VolumeView(name, "uuid-" + name, sizes.get(name), 0, "2026-01-01T00:00:00Z", attachments.get(name),
                new VolumeView.NbdUris("nbd://x/" + name, "nbd+unix:///" + name), 0);
    }
}
