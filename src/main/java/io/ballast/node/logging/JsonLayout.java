package io.ballast.node.logging;

import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.classic.spi.ThrowableProxyUtil;
import ch.qos.logback.core.CoreConstants;
import ch.qos.logback.core.LayoutBase;
import java.time.Instant;
import org.slf4j.event.KeyValuePair;

/**
 * One JSON object per line: ts, level, logger, msg, thread, the SLF4J 2 key-value pairs as fields,
 * and the stack trace as "error". Hand-written (no JSON library on the logging path) so that
 * logging cannot fail on an odd value.
 */
public final class JsonLayout extends LayoutBase<ILoggingEvent> {

    @Override
    public String doLayout(ILoggingEvent e) {
        StringBuilder sb = new StringBuilder(256);
        sb.append('{');
        field(sb, "ts", Instant.ofEpochMilli(e.getTimeStamp()).toString());
        sb.append(',');
        field(sb, "level", e.getLevel().toString());
        sb.append(',');
        field(sb, "logger", e.getLoggerName());
        sb.append(',');
        field(sb, "msg", e.getFormattedMessage());
        sb.append(',');
        field(sb, "thread", e.getThreadName());
        if (e.getKeyValuePairs() != null) {
            for (KeyValuePair kv : e.getKeyValuePairs()) {
                sb.append(',');
                if (kv.value instanceof Number || kv.value instanceof Boolean) {
                    quote(sb, kv.key);
                    sb.append(':').append(kv.value);
                } else {
                    field(sb, kv.key, String.valueOf(kv.value));
                }
            }
        }
        if (e.getThrowableProxy() != null) {
            sb.append(',');
            field(sb, "error", ThrowableProxyUtil.asString(e.getThrowableProxy()));
        }
        sb.append('}').append(CoreConstants.LINE_SEPARATOR);
        return sb.toString();
    }

    private static void field(StringBuilder sb, String key, String value) {
        quote(sb, key);
        sb.append(':');
        quote(sb, value);
    }

    static void quote(StringBuilder sb, String s) {
        if (s == null) {
            sb.append("null");
            return;
        }
        sb.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> sb.append("\\\"");
                case '\\' -> sb.append("\\\\");
                case '\n' -> sb.append("\\n");
                case '\r' -> sb.append("\\r");
                case '\t' -> sb.append("\\t");
                default -> {
                    if (c < 0x20) {
                        sb.append(String.format("\\u%04x", (int) c));
                    } else {
                        sb.append(c);
                    }
                }
            }
        }
        sb.append('"');
    }
}
