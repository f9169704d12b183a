package io.ballast.frontend.nbd;

/**
 * The peer broke the protocol in a way that leaves no well-defined reply (bad magic, unknown
 * client flags, truncated message): the only safe reaction is to close the connection. Checked,
 * so every decoder caller has to decide what closing means for it.
 */
public final class NbdProtocolException extends Exception {
    public NbdProtocolException(String message) {
        super(message);
    }
}
