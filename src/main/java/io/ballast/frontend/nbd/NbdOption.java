package io.ballast.frontend.nbd;

import java.util.List;

/** A decoded client option from the handshake phase. */
public sealed interface NbdOption {
    /** The option code as sent, echoed in every reply. */
    int code();

    /** NBD_OPT_EXPORT_NAME: enter transmission now; no error reply is possible. */
    record ExportName(String exportName) implements NbdOption {
        public int code() { return NbdProtocol.OPT_EXPORT_NAME; }
    }

    /** NBD_OPT_ABORT: client wants to leave; we ACK and close. */
    record Abort() implements NbdOption {
        public int code() { return NbdProtocol.OPT_ABORT; }
    }

    /** NBD_OPT_LIST. */
    record ListExports() implements NbdOption {
        public int code() { return NbdProtocol.OPT_LIST; }
    }

    /** NBD_OPT_INFO ({@code go=false}) or NBD_OPT_GO ({@code go=true}). */
    record Info(boolean go, String exportName, List<Integer> infoRequests) implements NbdOption {
        public Info {
            infoRequests = List.copyOf(infoRequests);
        }

        public int code() { return go ? NbdProtocol.OPT_GO : NbdProtocol.OPT_INFO; }
    }

    /** NBD_OPT_STRUCTURED_REPLY. */
    record StructuredReply() implements NbdOption {
        public int code() { return NbdProtocol.OPT_STRUCTURED_REPLY; }
    }

    /** NBD_OPT_STARTTLS: upgrade the connection to TLS (ACK, then the TLS handshake). */
    record StartTls() implements NbdOption {
        public int code() { return NbdProtocol.OPT_STARTTLS; }
    }

    /** An option we do not implement (meta context, extended headers, ...): ERR_UNSUP. */
    record Unsupported(int code) implements NbdOption {}

    /** A known option whose payload is malformed: ERR_INVALID with a reason for the human. */
    record Malformed(int code, String reason) implements NbdOption {}
}
