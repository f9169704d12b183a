package io.ballast.testing;

import com.fasterxml.jackson.databind.JavaType;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.introspect.BeanPropertyDefinition;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * The naming rule of the API's answers (docs/api.md, "Naming"), as a checker of JSON answers and of the
 * answer types' property names. Each broken rule is one line naming the path and the rule.
 */
public final class ApiNaming {
    private ApiNaming() {}

    /** Names that held a node id (or ids) before issue 24 and must not come back. */
    public static final Set<String> NODE_ID_NAMES_REFUSED = Set.of("node", "nodes", "holder", "holders", "attachedTo", "attachedOn",
            "leader", "leaderId", "owner", "voters", "reachable", "unreachable", "replacements", "servedBy", "host");

    /** The one attachment shape. */
    public static final Set<String> ATTACHMENT_FIELDS = Set.of("volume", "nodeId", "kind", "epoch", "method", "nbdUri", "nbdUnixUri",
            "nfsUri", "mountDir", "device", "attachedAt");

    private static final Pattern SIZE_WORD = Pattern.compile("(?i).*(size|capacity|free|allocated|provisioned|bandwidth|bytes).*");
    private static final Pattern DURATION_WORD = Pattern.compile("(?i).*(timeout|duration|elapsed|eta|interval|window|leaderless"
            + "|after|every|latency|seconds|secs|millis).*");
    /** A byte count per something: bandwidths and rates are per second. */
    private static final Pattern RATE_WORD = Pattern.compile("(?i).*(bandwidth|rate).*");
    private static final Pattern ISO_TIME = Pattern.compile("^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}.*");
    /** X.509's own names for its validity times. */
    private static final Set<String> TIME_NAMES_ALLOWED = Set.of("at", "notBefore", "notAfter");

    /**
     * What breaks the rule in one answer. {@code nodeIds}: the cluster's node ids (a string equal to one
     * is a node id); {@code dataKeys}: map keys that are data (volume names...), whose names are not
     * checked. {@code typesByName} collects each field name's JSON types across answers (see
     * {@link #mixedTypes}).
     */
    public static List<String> problems(String where, JsonNode answer, Set<String> nodeIds, Set<String> dataKeys,
            Map<String, Set<String>> typesByName) {
        List<String> out = new ArrayList<>();
        walk(where, null, answer, nodeIds, dataKeys, typesByName, out);
        return out;
    }

    private static void walk(String path, JsonNode parent, JsonNode n, Set<String> nodeIds, Set<String> dataKeys,
            Map<String, Set<String>> typesByName, List<String> out) {
        if (n.isArray()) {
            for (int i = 0; i < n.size(); i++) {
                walk(path + "[" + i + "]", n, n.get(i), nodeIds, dataKeys, typesByName, out);
            }
            return;
        }
        if (!n.isObject()) {
            return;
        }
        n.properties().forEach(e -> {
            String name = e.getKey();
            JsonNode v = e.getValue();
            String at = path + "." + name;
            if (!nodeIds.contains(name) && !dataKeys.contains(name)) {
                out.addAll(nameProblems(at, name, v, n, nodeIds));
                typesByName.computeIfAbsent(name, k -> new java.util.TreeSet<>()).add(kind(v));
            }
            if (!name.equals("labels")) { // label keys and values are the user's
                walk(at, n, v, nodeIds, dataKeys, typesByName, out);
            }
        });
    }

    private static String kind(JsonNode v) {
        return v.isNull() ? "null" : v.isNumber() ? "number" : v.isArray() ? "array" : v.isObject() ? "object"
                : v.isBoolean() ? "boolean" : "string";
    }

    private static List<String> nameProblems(String at, String name, JsonNode v, JsonNode owner, Set<String> nodeIds) {
        List<String> out = new ArrayList<>();
        if (NODE_ID_NAMES_REFUSED.contains(name) && (v.isTextual() || v.isContainerNode() && !v.isEmpty() && allText(v))) {
            out.add(at + ": '" + name + "' holds node ids: name it nodeId, …NodeId or …NodeIds");
        }
        if (v.isTextual() && nodeIds.contains(v.asText()) && !isNodeIdName(name) && !nodeIdExempt(name, owner)) {
            out.add(at + " = " + v.asText() + ": a node id in a field not named nodeId or …NodeId");
        }
        if (v.isArray() && !v.isEmpty() && allNodeIds(v, nodeIds) && !isNodeIdsName(name)) {
            out.add(at + " = " + v + ": a list of node ids not named …NodeIds");
        }
        if (v.isObject() && !v.isEmpty() && allNodeIds(v, nodeIds) && !isNodeIdsName(name)) {
            out.add(at + " = " + v + ": a map to node ids not named …NodeIds");
        }
        if (v.isNumber() && SIZE_WORD.matcher(name).matches() && !name.toLowerCase(java.util.Locale.ROOT).contains("bytes")) {
            out.add(at + ": a size without its unit: name it …Bytes");
        }
        if ((name.contains("BytesPer") || RATE_WORD.matcher(name).matches() && name.contains("Bytes")) && !name.endsWith("BytesPerSec")) {
            out.add(at + ": a rate is …BytesPerSec");
        }
        if (v.isNumber() && DURATION_WORD.matcher(name).matches() && !name.endsWith("Ms")) {
            out.add(at + ": a duration is in milliseconds, named …Ms");
        }
        if (v.isTextual() && ISO_TIME.matcher(v.asText()).matches() && !name.endsWith("At") && !TIME_NAMES_ALLOWED.contains(name)) {
            out.add(at + " = " + v.asText() + ": a time is named …At");
        }
        if (name.equals("attachment") && v.isObject()) {
            Set<String> fields = new HashSet<>();
            v.fieldNames().forEachRemaining(fields::add);
            if (!fields.equals(ATTACHMENT_FIELDS)) {
                out.add(at + ": not the one attachment shape " + new java.util.TreeSet<>(ATTACHMENT_FIELDS) + ": "
                        + new java.util.TreeSet<>(fields));
            }
        }
        return out;
    }

    static boolean isNodeIdName(String name) {
        return name.equals("nodeId") || name.endsWith("NodeId");
    }

    static boolean isNodeIdsName(String name) {
        return name.equals("nodeIds") || name.endsWith("NodeIds");
    }

    /** An event's subject and a watch event's name hold a volume name or a node id, by the event's kind. */
    private static boolean nodeIdExempt(String name, JsonNode owner) {
        return name.equals("subject") || (name.equals("name") && "node".equals(owner.path("kind").asText()));
    }

    private static boolean allText(JsonNode container) {
        for (JsonNode x : container) {
            if (!x.isTextual()) {
                return false;
            }
        }
        return true;
    }

    private static boolean allNodeIds(JsonNode container, Set<String> nodeIds) {
        for (JsonNode x : container) {
            if (!x.isTextual() || !nodeIds.contains(x.asText())) {
                return false;
            }
        }
        return true;
    }

    /**
     * Field names answered both as a number and as something else: a count and a list called the same
     * (a member's {@code replicas} count and a volume's {@code replicas}). A map and a list of the same
     * things may share a name ({@code volumes}).
     */
    public static List<String> mixedTypes(Map<String, Set<String>> typesByName) {
        List<String> out = new ArrayList<>();
        typesByName.forEach((name, kinds) -> {
            Set<String> k = new HashSet<>(kinds);
            k.remove("null");
            if (k.contains("number") && k.size() > 1) {
                out.add("'" + name + "' is answered as " + new java.util.TreeSet<>(k) + ": one name, one kind of value");
            }
        });
        return out;
    }

    /**
     * What breaks the rule in the property names of an answer type and the types it holds, as Jackson
     * writes them (@JsonProperty and @JsonIgnore applied): refused node-id names, sizes without Bytes,
     * durations without Ms, rates not …BytesPerSec.
     */
    public static List<String> typeProblems(ObjectMapper mapper, Class<?> root) {
        List<String> out = new ArrayList<>();
        walkType(mapper, mapper.constructType(root), root.getSimpleName(), new HashMap<>(), out);
        return out;
    }

    private static void walkType(ObjectMapper mapper, JavaType t, String path, Map<Class<?>, Boolean> seen, List<String> out) {
        while (t.isContainerType()) {
            t = t.getContentType();
        }
        Class<?> c = t.getRawClass();
        if (c.isPrimitive() || c.getName().startsWith("java.") || c.getName().startsWith("com.fasterxml.") || c.isEnum()
                || seen.put(c, true) != null) {
            return;
        }
        for (BeanPropertyDefinition p : mapper.getSerializationConfig().introspect(t).findProperties()) {
            if (!p.couldSerialize()) {
                continue;
            }
            String name = p.getName();
            JavaType pt = p.getPrimaryType();
            Class<?> raw = pt.getRawClass();
            boolean number = raw.isPrimitive() && raw != boolean.class || Number.class.isAssignableFrom(raw);
            String at = path + "." + name;
            JavaType content = pt;
            while (content.isContainerType()) {
                content = content.getContentType();
            }
            if (NODE_ID_NAMES_REFUSED.contains(name) && content.getRawClass() == String.class) {
                out.add(at + ": '" + name + "' names node ids: name it nodeId, …NodeId or …NodeIds");
            }
            if (number && SIZE_WORD.matcher(name).matches() && !name.toLowerCase(java.util.Locale.ROOT).contains("bytes")) {
                out.add(at + ": a size without its unit: name it …Bytes");
            }
            if ((name.contains("BytesPer") || RATE_WORD.matcher(name).matches() && name.contains("Bytes")) && !name.endsWith("BytesPerSec")) {
                out.add(at + ": a rate is …BytesPerSec");
            }
            if (number && DURATION_WORD.matcher(name).matches() && !name.endsWith("Ms")) {
                out.add(at + ": a duration is in milliseconds, named …Ms");
            }
            walkType(mapper, pt, at, seen, out);
        }
    }
}
