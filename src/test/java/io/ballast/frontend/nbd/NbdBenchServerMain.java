package io.ballast.frontend.nbd;

import java.net.InetSocketAddress;
import java.nio.file.Path;

/**
 * Serves one file as export "bench" for manual runs and fio comparisons:
 * {@code java -cp ... io.ballast.frontend.nbd.NbdBenchServerMain FILE SIZE_BYTES PORT [SOCKET]}.
 */
public final class NbdBenchServerMain {
    public static void main(String[] args) throws Exception {
        FileBlockDevice device = new FileBlockDevice(Path.of(args[0]), Long.parseLong(args[1]));
        Path socket = args.length > 3 ? Path.of(args[3]) : null;
        NbdServer server = new NbdServer(new MapExportRegistry().add("bench", device),
                NbdServerConfig.defaults(new InetSocketAddress("127.0.0.1", Integer.parseInt(args[2])), socket));
        server.start();
        System.out.println("listening " + server.boundTcpAddress() + " " + socket);
        Thread.currentThread().join();
    }
}
