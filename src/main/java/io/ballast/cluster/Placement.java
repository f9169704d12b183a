package io.ballast.cluster;

import io.ballast.common.ErrorCode;
import io.ballast.common.Sizes;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * Where a volume's replicas go: a pure function of the nodes and the request, so it can be tested
 * exhaustively. Rules: distinct nodes; distinct failure domains (the value of the spread label,
 * {@code zone} by default when any node has one, else each node is its own domain); only nodes
 * that are up, not cordoned, not draining; within capacity (provisioned + size &lt;= capacity x
 * over-commit ratio); with at least one pool directory that is not full (the node picks a replica's
 * pool itself: the one with the most free space); least-used nodes first. Every node gets a verdict,
 * so a failure says why for each node.
 */
public final class Placement {
    public static final String SPREAD_NODE = "node";
    public static final int DEFAULT_MAX_REPLICAS = 3;

    private Placement() {}

    /**
     * A node as placement sees it. {@code provisionedBytes}: sizes of the replicas already on it;
     * {@code pools}: its pool directories as last reported (empty: not reported, not judged).
     */
    public record Candidate(String nodeId, Map<String, String> labels, String state, boolean cordoned, boolean draining,
            long capacityBytes, long provisionedBytes, List<NodePool> pools) {
        public Candidate {
            pools = pools == null ? List.of() : List.copyOf(pools);
        }

        public Candidate(String nodeId, Map<String, String> labels, String state, boolean cordoned, boolean draining,
                long capacityBytes, long provisionedBytes) {
            this(nodeId, labels, state, cordoned, draining, capacityBytes, provisionedBytes, List.of());
        }

        boolean allPoolsFull() {
            return !pools.isEmpty() && pools.stream().allMatch(NodePool::full);
        }
    }

    /** "pool default is full (12 MiB free of 40 GiB)", or every pool with its free space. */
    static String fullPoolsReason(List<NodePool> pools) {
        if (pools.size() == 1) {
            return "pool " + pools.getFirst().name() + " is full (" + space(pools.getFirst()) + ")";
        }
        List<String> each = pools.stream().map(p -> p.name() + " (" + space(p) + ")").toList();
        return "every pool is full: " + String.join(", ", each);
    }

    private static String space(NodePool p) {
        return Sizes.format(Math.max(0, p.freeBytes())) + " free of " + Sizes.format(p.capacityBytes());
    }

    /**
     * @param replicas 0 for the default
     * @param spreadBy a label key, {@code node}, or null for auto
     * @param holders nodes that already hold a replica of the volume (drain), with their domains taken
     */
    public record Request(String volume, long sizeBytes, int replicas, String spreadBy, double overcommitRatio,
            Set<String> holders, Topology topology) {
        public Request {
            holders = holders == null ? Set.of() : Set.copyOf(holders);
            topology = topology == null ? Topology.ANY : topology;
        }

        public Request(String volume, long sizeBytes, int replicas, String spreadBy, double overcommitRatio, Set<String> holders) {
            this(volume, sizeBytes, replicas, spreadBy, overcommitRatio, holders, null);
        }
    }

    /**
     * Where replicas should go first (CSI's accessibility requirements). A segment is a map of label
     * key to value; the key {@link #NODE_KEY} names a node id. Every node reaches every volume over
     * the network, so topology steers placement and never forbids it: the preferred nodes first, in
     * their order (a replica on the first consumer's node), then nodes in a requisite segment, then
     * the rest, each tier by the usual least-used order.
     */
    public record Topology(List<Map<String, String>> requisite, List<String> preferredNodes) {
        public static final String NODE_KEY = "node";
        public static final Topology ANY = new Topology(List.of(), List.of());

        public Topology {
            requisite = requisite == null ? List.of() : requisite.stream().map(Map::copyOf).toList();
            preferredNodes = preferredNodes == null ? List.of() : List.copyOf(preferredNodes);
        }

        /** Whether a node lies in one of the requisite segments (every entry of it matches). */
        public boolean inRequisite(String nodeId, Map<String, String> labels) {
            for (Map<String, String> seg : requisite) {
                boolean all = seg.entrySet().stream().allMatch(e -> NODE_KEY.equals(e.getKey())
                        ? e.getValue().equals(nodeId) : e.getValue().equals(labels.get(e.getKey())));
                if (all && !seg.isEmpty()) {
                    return true;
                }
            }
            return false;
        }

        /** Lower goes first. */
        int tier(String nodeId, Map<String, String> labels) {
            int i = preferredNodes.indexOf(nodeId);
            if (i >= 0) {
                return i;
            }
            return inRequisite(nodeId, labels) ? preferredNodes.size() : Integer.MAX_VALUE;
        }
    }

    /** Why a node was or was not chosen. */
    public record Verdict(String nodeId, boolean chosen, String reason) {
        @Override
        public String toString() {
            return nodeId + ": " + reason;
        }
    }

    /** {@code code} null on success. */
    public record Result(List<String> chosen, List<Verdict> verdicts, String spreadBy, int replicas, ErrorCode code,
            String message) {
        public boolean ok() {
            return code == null;
        }
    }

    /** {@code zone} when any node carries a zone label, else {@code node}. */
    public static String autoSpread(List<Candidate> nodes) {
        return nodes.stream().anyMatch(n -> n.labels().containsKey(Labels.ZONE)) ? Labels.ZONE : SPREAD_NODE;
    }

    /** The failure domain of a node, or null when it lacks the label. */
    public static String domainOf(Candidate n, String spreadBy) {
        return SPREAD_NODE.equals(spreadBy) ? n.nodeId() : n.labels().get(spreadBy);
    }

    static boolean schedulable(Candidate n) {
        return NodeRecord.UP.equals(n.state()) && !n.cordoned() && !n.draining();
    }

    /** min(3, failure domains among schedulable nodes), at least 1. */
    public static int defaultReplicas(List<Candidate> nodes, String spreadBy) {
        Set<String> domains = new TreeSet<>();
        for (Candidate n : nodes) {
            String d = domainOf(n, spreadBy);
            if (schedulable(n) && d != null) {
                domains.add(d);
            }
        }
        return Math.max(1, Math.min(DEFAULT_MAX_REPLICAS, domains.size()));
    }

    /**
     * The default replica count of a new volume: min(3, failure domains among all members, whatever
     * their state), at least 1. A cordoned, draining or down member still counts, so a volume created
     * while one is away wants its replica there (or elsewhere) once it can have one.
     */
    public static int memberReplicas(List<Candidate> nodes, String spreadBy) {
        Set<String> domains = new TreeSet<>();
        for (Candidate n : nodes) {
            String d = domainOf(n, spreadBy);
            if (d != null) {
                domains.add(d);
            }
        }
        return Math.max(1, Math.min(DEFAULT_MAX_REPLICAS, domains.size()));
    }

    /** What placement may still provision on a node. */
    public static long availableBytes(Candidate n, double overcommitRatio) {
        return (long) Math.floor(n.capacityBytes() * overcommitRatio) - n.provisionedBytes();
    }

    public static Result place(List<Candidate> nodes, Request req) {
        String spreadBy = req.spreadBy() == null || req.spreadBy().isBlank() ? autoSpread(nodes) : req.spreadBy();
        String domainWord = SPREAD_NODE.equals(spreadBy) ? "node" : spreadBy;
        int replicas = req.replicas() <= 0 ? defaultReplicas(nodes, spreadBy) : req.replicas();
        List<Candidate> sorted = new ArrayList<>(nodes);
        sorted.sort(Comparator.comparing(Candidate::nodeId));

        Map<String, String> reasons = new LinkedHashMap<>();
        Map<String, String> takenBy = new LinkedHashMap<>(); // domain -> node holding it
        for (Candidate n : sorted) {
            if (req.holders().contains(n.nodeId())) {
                String d = domainOf(n, spreadBy);
                if (d != null) {
                    takenBy.putIfAbsent(d, n.nodeId());
                }
            }
        }
        List<Candidate> eligible = new ArrayList<>();
        boolean capacityLimited = false;
        for (Candidate n : sorted) {
            String why = null;
            long avail = availableBytes(n, req.overcommitRatio());
            if (req.holders().contains(n.nodeId())) {
                why = "already holds a replica of " + req.volume();
            } else if (!NodeRecord.UP.equals(n.state())) {
                why = "node is " + n.state();
            } else if (n.cordoned()) {
                why = n.draining() ? "draining" : "cordoned";
            } else if (domainOf(n, spreadBy) == null) {
                why = "no '" + spreadBy + "' label to spread by";
            } else if (n.allPoolsFull()) {
                why = fullPoolsReason(n.pools());
                capacityLimited = true;
            } else if (avail < req.sizeBytes()) {
                why = Sizes.format(Math.max(0, avail)) + " free, " + Sizes.format(req.sizeBytes()) + " asked"
                        + (req.overcommitRatio() != 1.0 ? " (capacity " + Sizes.format(n.capacityBytes()) + " x over-commit "
                        + req.overcommitRatio() + ")" : "");
                capacityLimited = true;
            }
            if (why != null) {
                reasons.put(n.nodeId(), why);
            } else {
                eligible.add(n);
            }
        }
        // preferred nodes first, then least used (provisioned / schedulable capacity), then most room, then id
        eligible.sort(Comparator
                .comparingInt((Candidate n) -> req.topology().tier(n.nodeId(), n.labels()))
                .thenComparingDouble((Candidate n) -> n.capacityBytes() <= 0 ? 1.0
                        : n.provisionedBytes() / (n.capacityBytes() * req.overcommitRatio()))
                .thenComparing(Comparator.comparingLong((Candidate n) -> availableBytes(n, req.overcommitRatio())).reversed())
                .thenComparing(Candidate::nodeId));
        List<String> chosen = new ArrayList<>();
        for (Candidate n : eligible) {
            String d = domainOf(n, spreadBy);
            if (takenBy.containsKey(d)) {
                String holder = takenBy.get(d);
                reasons.put(n.nodeId(), SPREAD_NODE.equals(spreadBy) ? "already holds a replica"
                        : domainWord + " " + d + " already holds a replica (" + holder + ")");
            } else if (chosen.size() >= replicas) {
                reasons.put(n.nodeId(), "eligible, not needed");
            } else {
                chosen.add(n.nodeId());
                takenBy.put(d, n.nodeId());
                reasons.put(n.nodeId(), "chosen" + (SPREAD_NODE.equals(spreadBy) ? "" : " (" + domainWord + " " + d + ")"));
            }
        }
        List<Verdict> verdicts = new ArrayList<>();
        for (Candidate n : sorted) {
            verdicts.add(new Verdict(n.nodeId(), chosen.contains(n.nodeId()), reasons.get(n.nodeId())));
        }
        if (chosen.size() >= replicas) {
            return new Result(List.copyOf(chosen), verdicts, spreadBy, replicas, null, null);
        }
        Set<String> allDomains = new TreeSet<>();
        for (Candidate n : sorted) {
            String d = domainOf(n, spreadBy);
            if (d != null) {
                allDomains.add(d);
            }
        }
        String need = replicas + " replica" + (replicas == 1 ? "" : "s") + " of " + Sizes.format(req.sizeBytes())
                + " on distinct " + (SPREAD_NODE.equals(spreadBy) ? "nodes" : spreadBy + "s");
        // nothing is placed when placement fails: "chosen" would mislead
        verdicts = verdicts.stream().map(v -> v.chosen() ? new Verdict(v.nodeId(), false,
                v.reason().replaceFirst("^chosen", "eligible")) : v).toList();
        StringBuilder detail = new StringBuilder();
        for (Verdict v : verdicts) {
            detail.append(detail.isEmpty() ? "" : "; ").append(v);
        }
        ErrorCode code;
        String head;
        if (req.holders().isEmpty() && allDomains.size() < replicas) {
            code = ErrorCode.INVALID_ARGUMENT;
            head = "cannot place volume " + req.volume() + ": " + need + ", but the cluster has "
                    + allDomains.size() + " " + (SPREAD_NODE.equals(spreadBy) ? "node" : spreadBy)
                    + (allDomains.size() == 1 ? "" : "s") + (SPREAD_NODE.equals(spreadBy) ? "" : " " + allDomains)
                    + "; ask for fewer replicas (--repl)";
        } else {
            code = capacityLimited ? ErrorCode.NO_SPACE : ErrorCode.CONFLICT;
            head = "cannot place volume " + req.volume() + ": " + need + ", found " + chosen.size();
        }
        if (nodes.isEmpty()) {
            detail.append("no nodes in the cluster");
        }
        return new Result(List.of(), verdicts, spreadBy, replicas, code, head + " (" + detail + ")");
    }
}
