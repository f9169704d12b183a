package io.ballast.security;

/**
 * The token a node joins with: {@code SECRET.CA_SHA256} (kubeadm's discovery hash idea). The secret
 * proves the joiner may join; the fingerprint lets the joiner check it talks to this cluster before
 * it sends the secret. A plain token (no dot) has no fingerprint: fine for an insecure cluster.
 */
public record JoinToken(String secret, String caSha256) {
    public static JoinToken parse(String text) {
        if (text == null) {
            return null;
        }
        String t = text.strip();
        int dot = t.lastIndexOf('.');
        if (dot > 0) {
            String fp = Fingerprint.normalize(t.substring(dot + 1));
            if (Fingerprint.isSha256Hex(fp)) {
                return new JoinToken(t.substring(0, dot), fp);
            }
        }
        return new JoinToken(t, null);
    }

    public String format() {
        return caSha256 == null ? secret : secret + "." + caSha256;
    }

    @Override
    public String toString() {
        return "JoinToken[secret=<hidden>, caSha256=" + caSha256 + "]";
    }
}
