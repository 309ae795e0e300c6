import de.bwaldvogel.mongo.MongoBackend;
import de.bwaldvogel.mongo.MongoCollection;
import de.bwaldvogel.mongo.MongoDatabase;
import de.bwaldvogel.mongo.MongoServer;
import de.bwaldvogel.mongo.ServerVersion;
import de.bwaldvogel.mongo.backend.CursorRegistry;
import de.bwaldvogel.mongo.backend.Index;
import de.bwaldvogel.mongo.backend.IndexKey;
import de.bwaldvogel.mongo.bson.Document;
import de.bwaldvogel.mongo.backend.h2.H2Backend;
import de.bwaldvogel.mongo.backend.h2.H2Database;
import de.bwaldvogel.mongo.exception.KeyConstraintError;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.util.List;
import org.h2.mvstore.MVStore;

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

        MongoBackend backend = dataFile.equals("-") ? new IndexedH2Backend(MVStore.open(null)) : new IndexedH2Backend(dataFile);
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

/**
 * mongo-java-server answers a query from a unique index (the _id index among them) only when the
 * query names exactly the index's fields; `{_id, version, status}` (every conditional update the
 * service makes) scans the whole collection instead. MongoDB's planner uses the index for the
 * fields it covers and filters the rest: so do we, so that the engine's costs grow as MongoDB's do.
 */
class IndexedH2Backend extends H2Backend {
    IndexedH2Backend(MVStore store) {
        super(store);
    }

    IndexedH2Backend(String dataFile) {
        super(dataFile);
    }

    @Override
    protected MongoDatabase openOrCreateDatabase(String name) {
        return new IndexedH2Database(name, getMvStore(), getCursorRegistry());
    }
}

class IndexedH2Database extends H2Database {
    IndexedH2Database(String name, MVStore store, CursorRegistry cursors) {
        super(name, store, cursors);
    }

    @Override
    protected Index<Object> openOrCreateUniqueIndex(String collection, String name, List<IndexKey> keys, boolean sparse) {
        return new CoveringIndex(super.openOrCreateUniqueIndex(collection, name, keys, sparse), sparse);
    }
}

/**
 * The engine's own unique index, asked about only the part of a query it covers (its fields, at the
 * query's top level, where every match must have them). The collection still matches each document
 * it returns against the whole query, so the answer is the scan's: only found sooner.
 */
class CoveringIndex extends Index<Object> {
    private final Index<Object> inner;

    CoveringIndex(Index<Object> inner, boolean sparse) {
        super(inner.getName(), inner.getKeys(), sparse);
        this.inner = inner;
    }

    /** The query's conditions on this index's fields, or null when it lacks one of them. */
    private Document covered(Document query) {
        Document part = new Document();
        for (String key : keys()) {
            if (!query.containsKey(key)) return null;
            part.put(key, query.get(key));
        }
        return part;
    }

    @Override
    public boolean canHandle(Document query) {
        Document part = covered(query);
        return part != null && inner.canHandle(part);
    }

    @Override
    public Iterable<Object> getPositions(Document query) {
        return inner.getPositions(covered(query));
    }

    @Override public Object getPosition(Document document) { return inner.getPosition(document); }
    @Override public void checkAdd(Document document, MongoCollection<Object> collection) { inner.checkAdd(document, collection); }
    @Override public void add(Document document, Object position, MongoCollection<Object> collection) { inner.add(document, position, collection); }
    @Override public Object remove(Document document) { return inner.remove(document); }
    @Override public long getCount() { return inner.getCount(); }
    @Override public boolean isEmpty() { return inner.isEmpty(); }
    @Override public long getDataSize() { return inner.getDataSize(); }
    @Override public void checkUpdate(Document old, Document updated, MongoCollection<Object> collection) { inner.checkUpdate(old, updated, collection); }
    @Override public void updateInPlace(Document old, Document updated, Object position, MongoCollection<Object> collection) throws KeyConstraintError { inner.updateInPlace(old, updated, position, collection); }
    @Override public void drop() { inner.drop(); }
    @Override public boolean isUnique() { return inner.isUnique(); }
}
