package io.ballast.security;

import java.util.List;

/**
 * Body of {@code POST /v1/cluster/certificate}.
 *
 * @param token the cluster token (joining); null when a member renews with its current certificate
 * @param nodeId the node the certificate is for (the CSR's CN)
 * @param csr PKCS#10, PEM
 * @param addresses host names and IPs the node is reached at (SANs)
 * @param forwarded set by a member passing the request on to one holding the CA key (not passed on again)
 */
public record CertificateRequest(String token, String nodeId, String csr, List<String> addresses, Boolean forwarded) {
    @Override
    public String toString() {
        return "CertificateRequest[nodeId=" + nodeId + ", token=" + (token == null ? "none" : "<hidden>") + "]";
    }
}
