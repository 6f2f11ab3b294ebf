// The baseline the listener benchmark compares with: an alarm server written the way the vendor's
// Java demo listener is (com.sun.net.httpserver.HttpServer with its default executor), reading
// each POST's body and answering 200 OK, storing nothing.
// Usage: java benches/VendorDemoServer.java PORT
import com.sun.net.httpserver.HttpServer;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;

public class VendorDemoServer {
    public static void main(String[] args) throws Exception {
        int port = Integer.parseInt(args[0]);
        HttpServer server = HttpServer.create(new InetSocketAddress("127.0.0.1", port), 1024);
        server.createContext("/", exchange -> {
            byte[] buf = new byte[65536];
            try (InputStream in = exchange.getRequestBody()) {
                while (in.read(buf) >= 0) { }
            }
            byte[] ok = "OK".getBytes();
            exchange.sendResponseHeaders(200, ok.length);
            try (OutputStream out = exchange.getResponseBody()) {
                out.write(ok);
            }
        });
        server.setExecutor(null);
        server.start();
        System.err.println("vendor-demo baseline listening on " + port);
    }
}
