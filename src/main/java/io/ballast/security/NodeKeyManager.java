package io.ballast.security;

import java.net.Socket;
import java.security.Principal;
import java.security.PrivateKey;
import java.security.cert.X509Certificate;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.X509ExtendedKeyManager;

/**
 * Presents this node's current certificate. {@link #update} swaps it (renewal): every handshake after
 * that uses the new one, on every listener and client built on this manager, with no restart.
 */
public final class NodeKeyManager extends X509ExtendedKeyManager {
    static final String ALIAS = "node";

    private record Current(PrivateKey key, X509Certificate[] chain) {}

    private volatile Current current;

    public NodeKeyManager(PrivateKey key, X509Certificate... chain) {
        update(key, chain);
    }

    public void update(PrivateKey key, X509Certificate... chain) {
        current = new Current(key, chain.clone());
    }

    public X509Certificate certificate() {
        return current.chain()[0];
    }

    @Override
    public String[] getClientAliases(String keyType, Principal[] issuers) {
        return new String[] {ALIAS};
    }

    @Override
    public String chooseClientAlias(String[] keyType, Principal[] issuers, Socket socket) {
        return ALIAS;
    }

    @Override
    public String[] getServerAliases(String keyType, Principal[] issuers) {
        return new String[] {ALIAS};
    }

    @Override
    public String chooseServerAlias(String keyType, Principal[] issuers, Socket socket) {
        return matches(keyType) ? ALIAS : null;
    }

    @Override
    public String chooseEngineClientAlias(String[] keyType, Principal[] issuers, SSLEngine engine) {
        return ALIAS;
    }

    @Override
    public String chooseEngineServerAlias(String keyType, Principal[] issuers, SSLEngine engine) {
        return matches(keyType) ? ALIAS : null;
    }

    /** The server asks per key type (EC, RSA...); answer only for the type of our key. */
    private boolean matches(String keyType) {
        String alg = current.key().getAlgorithm();
        return keyType == null || keyType.startsWith(alg) || ("EC".equals(keyType) && alg.startsWith("EC"))
                || (keyType.startsWith("EC") && alg.equals("EC"));
    }

    @Override
    public X509Certificate[] getCertificateChain(String alias) {
        return ALIAS.equals(alias) ? current.chain().clone() : null;
    }

    @Override
    public PrivateKey getPrivateKey(String alias) {
        return ALIAS.equals(alias) ? current.key() : null;
    }
}
