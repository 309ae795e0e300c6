import de.bwaldvogel.mongo.MongoBackend;
import de.bwaldvogel.mongo.MongoServer;
import de.bwaldvogel.mongo.ServerVersion;
import de.bwaldvogel.mongo.backend.h2.H2Backend;
import java.io.InputStream;
import java.net.InetSocketAddress;

/**
 * Starts mongo-java-server on 127.0.0.1 for development and tests.
 *
 * Arguments: PORT (0 picks a free one) and DATA_FILE (an H2 MVStore file; "-" keeps data in memory).
 * Prints the mongodb:// URI on a line by itself once it accepts connections. With --exit-on-stdin-close
 * it shuts down when its parent closes our standard input, so a crashed parent leaves no orphan.
 */
public class MongoLauncher {
    public static void main(String[] args) throws Exception {
        int port = Integer.parseInt(args[0]);
        String dataFile = args[1];
        boolean exitOnStdinClose = args.length > 2 && args[2].equals("--exit-on-stdin-close");

        MongoBackend backend = dataFile.equals("-") ? H2Backend.inMemory() : new H2Backend(dataFile);
        backend.version(ServerVersion.MONGO_5_0);
        MongoServer server = new MongoServer(backend);
        server.bind("127.0.0.1", port);
        InetSocketAddress address = server.getLocalAddress();

        Runtime.getRuntime().addShutdownHook(new Thread(server::shutdown));
        System.out.println("mongodb://127.0.0.1:" + address.getPort() + "/");
        System.out.flush();

        if (exitOnStdinClose) {
            InputStream in = System.in;
            while (in.read() != -1) {
                // Nothing to read: we only wait for the parent to go away.
            }
            System.exit(0);
        }
        Thread.currentThread().join();
    }
}
