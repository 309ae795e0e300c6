import de.bwaldvogel.mongo.MongoBackend;
import de.bwaldvogel.mongo.MongoCollection;
import de.bwaldvogel.mongo.MongoDatabase;
import de.bwaldvogel.mongo.MongoServer;
import de.bwaldvogel.mongo.ServerVersion;
import de.bwaldvogel.mongo.backend.CollectionOptions;
import de.bwaldvogel.mongo.backend.CursorRegistry;
import de.bwaldvogel.mongo.backend.Index;
import de.bwaldvogel.mongo.backend.IndexKey;
import de.bwaldvogel.mongo.bson.BsonRegularExpression;
import de.bwaldvogel.mongo.bson.Document;
import de.bwaldvogel.mongo.backend.h2.H2Backend;
import de.bwaldvogel.mongo.backend.h2.H2Collection;
import de.bwaldvogel.mongo.backend.h2.H2Database;
import de.bwaldvogel.mongo.exception.KeyConstraintError;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.NavigableMap;
import java.util.Set;
import java.util.TreeMap;
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

        MVStore store = MVStore.open(dataFile.equals("-") ? null : dataFile);
        IndexedH2Database.store = store;
        MongoBackend backend = new IndexedH2Backend(store);
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

    @Override
    protected MongoDatabase openOrCreateDatabase(String name) {
        return new IndexedH2Database(name, getMvStore(), getCursorRegistry());
    }
}

class IndexedH2Database extends H2Database {
    /**
     * The one store of this process, set before the backend opens any database: H2Database keeps
     * its own private, and its constructor already opens collections (before a field of ours would be set).
     */
    static MVStore store;

    IndexedH2Database(String name, MVStore store, CursorRegistry cursors) {
        super(name, store, cursors);
    }

    /** H2Database's own collection (its two maps, under its names), with index builds and drops under the collection's lock. */
    @Override
    protected MongoCollection<Object> openOrCreateCollection(String name, CollectionOptions options) {
        String namespace = getFullCollectionNamespace(name);
        return new IndexLockedCollection(this, name, options, store.openMap("databases." + namespace), store.openMap("meta." + namespace), cursorRegistry);
    }

    @Override
    protected Index<Object> openOrCreateUniqueIndex(String collection, String name, List<IndexKey> keys, boolean sparse) {
        return new CoveringIndex(super.openOrCreateUniqueIndex(collection, name, keys, sparse), sparse);
    }

    @Override
    protected Index<Object> openOrCreateSecondaryIndex(String collection, String name, List<IndexKey> keys, boolean sparse) {
        return new SecondaryIndex(name, keys, sparse);
    }
}

/**
 * A non-unique index, which mongo-java-server otherwise ignores (and scans): in memory, rebuilt
 * from the documents when the engine starts. It answers only what it can answer with certainty on
 * its first field: equality or `$in` on dates, strings and ObjectIds, and ranges on dates. It gives
 * every document that can match (arrays on the path are followed, as MongoDB's multikey indexes
 * are), and the collection matches each against the whole query: a wrong guess here can cost time,
 * never an answer.
 */
class SecondaryIndex extends Index<Object> {
    private static final Set<String> OPERATORS = Set.of("$eq", "$in", "$gt", "$gte", "$lt", "$lte");
    /** Values of one type together, each type's in its own order; the order between types is only a grouping. */
    private static final Comparator<Comparable<Object>> ORDER = (a, b) -> {
        int byType = a.getClass().getName().compareTo(b.getClass().getName());
        return byType != 0 ? byType : a.compareTo(b);
    };

    private final String[] path;
    private final boolean usable;
    /** Indexed value -> the documents holding it (by _id, with their positions). */
    private final NavigableMap<Comparable<Object>, Map<Object, Object>> byValue = new TreeMap<>(ORDER);
    /** Every document the collection holds: _id -> position, and the values it was indexed under. */
    private final Map<Object, Object> positions = new HashMap<>();
    private final Map<Object, Set<Comparable<Object>>> indexedUnder = new HashMap<>();

    SecondaryIndex(String name, List<IndexKey> keys, boolean sparse) {
        super(name, keys, sparse);
        path = keys.get(0).getKey().split("\\.");
        boolean numericStep = false;
        for (String step : path) numericStep |= !step.isEmpty() && step.chars().allMatch(Character::isDigit);
        // A path through an array position ("items.0.at") means what MongoDB means by it only with care: scan.
        usable = !numericStep;
    }

    @SuppressWarnings("unchecked")
    private static Comparable<Object> indexable(Object value) {
        if (value instanceof Instant || value instanceof String || value instanceof de.bwaldvogel.mongo.bson.ObjectId) return (Comparable<Object>) value;
        return null;
    }

    private static void collect(Object value, String[] path, int step, Set<Comparable<Object>> out) {
        if (value instanceof List<?> list) {
            for (Object element : list) collect(element, path, step, out);
            return;
        }
        if (step == path.length) {
            Comparable<Object> key = indexable(value);
            if (key != null) out.add(key);
            return;
        }
        if (value instanceof Document document && document.containsKey(path[step])) collect(document.get(path[step]), path, step + 1, out);
    }

    private Set<Comparable<Object>> valuesOf(Document document) {
        Set<Comparable<Object>> out = new HashSet<>();
        collect(document, path, 0, out);
        return out;
    }

    @Override
    public synchronized boolean canHandle(Document query) {
        if (!usable || !query.containsKey(keys().get(0))) return false;
        Object condition = query.get(keys().get(0));
        if (indexable(condition) != null) return true;
        if (!(condition instanceof Document operators) || operators.isEmpty()) return false;
        for (Map.Entry<String, Object> entry : operators.entrySet()) {
            String operator = entry.getKey();
            Object operand = entry.getValue();
            if (!OPERATORS.contains(operator)) return false;
            if (operator.equals("$in")) {
                if (!(operand instanceof List<?> list) || list.isEmpty()) return false;
                for (Object element : list) if (indexable(element) == null) return false;
            } else if (operator.equals("$eq")) {
                if (indexable(operand) == null) return false;
            } else if (!(operand instanceof Instant)) {
                return false;
            }
        }
        return true;
    }

    @Override
    public synchronized Iterable<Object> getPositions(Document query) {
        Object condition = query.get(keys().get(0));
        Map<Object, Object> found = new LinkedHashMap<>();
        Comparable<Object> single = indexable(condition);
        if (single != null) {
            add(found, byValue.get(single));
        } else {
            Document operators = (Document) condition;
            if (operators.containsKey("$eq")) {
                add(found, byValue.get(indexable(operators.get("$eq"))));
            } else if (operators.containsKey("$in")) {
                for (Object element : (List<?>) operators.get("$in")) add(found, byValue.get(indexable(element)));
            } else {
                // Dates only: from the lower bound (or the first date) to the upper (or the last).
                Instant from = Instant.MIN;
                Instant to = Instant.MAX;
                if (operators.get("$gte") instanceof Instant at) from = at;
                if (operators.get("$gt") instanceof Instant at && at.compareTo(from) > 0) from = at;
                if (operators.get("$lte") instanceof Instant at) to = at;
                if (operators.get("$lt") instanceof Instant at && at.compareTo(to) < 0) to = at;
                if (from.compareTo(to) <= 0) {
                    for (Map<Object, Object> documents : byValue.subMap(indexable(from), true, indexable(to), true).values()) add(found, documents);
                }
            }
        }
        List<Object> result = new ArrayList<>(found.values());
        // In the collection's own order (its data map is kept by _id), as a scan would give them.
        if (result.stream().allMatch(p -> p instanceof de.bwaldvogel.mongo.bson.ObjectId)) {
            result.sort((a, b) -> ((de.bwaldvogel.mongo.bson.ObjectId) a).compareTo((de.bwaldvogel.mongo.bson.ObjectId) b));
        }
        return result;
    }

    private static void add(Map<Object, Object> found, Map<Object, Object> documents) {
        if (documents != null) found.putAll(documents);
    }

    @Override
    public synchronized void add(Document document, Object position, MongoCollection<Object> collection) {
        Object id = document.get("_id");
        positions.put(id, position);
        Set<Comparable<Object>> values = valuesOf(document);
        indexedUnder.put(id, values);
        for (Comparable<Object> value : values) byValue.computeIfAbsent(value, v -> new LinkedHashMap<>()).put(id, position);
    }

    @Override
    public synchronized Object remove(Document document) {
        Object id = document.get("_id");
        forget(id);
        return positions.remove(id);
    }

    private void forget(Object id) {
        Set<Comparable<Object>> values = indexedUnder.remove(id);
        if (values == null) return;
        for (Comparable<Object> value : values) {
            Map<Object, Object> documents = byValue.get(value);
            if (documents == null) continue;
            documents.remove(id);
            if (documents.isEmpty()) byValue.remove(value);
        }
    }

    @Override
    public synchronized void updateInPlace(Document old, Document updated, Object position, MongoCollection<Object> collection) {
        forget(old.get("_id"));
        positions.remove(old.get("_id"));
        add(updated, position, collection);
    }

    @Override public Object getPosition(Document document) { return null; }
    @Override public void checkAdd(Document document, MongoCollection<Object> collection) {}
    @Override public void checkUpdate(Document old, Document updated, MongoCollection<Object> collection) {}
    @Override public synchronized long getCount() { return positions.size(); }
    @Override public synchronized boolean isEmpty() { return positions.isEmpty(); }
    @Override public long getDataSize() { return 0; }

    @Override
    public synchronized void drop() {
        byValue.clear();
        positions.clear();
        indexedUnder.clear();
    }
}

/**
 * The engine takes its collection lock for reads and writes but not to build or drop an index: a
 * write between a build's read of the documents and the index's registration would never be
 * indexed, and a drop could change the index list under a write. Both take the lock here.
 */
class IndexLockedCollection extends H2Collection {
    IndexLockedCollection(MongoDatabase database, String name, CollectionOptions options, org.h2.mvstore.MVMap<Object, Document> data, org.h2.mvstore.MVMap<String, Object> meta, CursorRegistry cursors) {
        super(database, name, options, data, meta, cursors);
    }

    @Override
    public synchronized void addIndex(Index<Object> index) {
        super.addIndex(index);
    }

    @Override
    public synchronized void dropIndex(String name) {
        super.dropIndex(name);
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

    /**
     * The query's conditions on this index's fields, or null when it lacks one of them or names one
     * the engine's lookup would get wrong: null (a sparse index holds no entry for it) or a regular
     * expression, alone or in an `$in` (looked up as a value).
     */
    private Document covered(Document query) {
        Document part = new Document();
        for (String key : keys()) {
            if (!query.containsKey(key)) return null;
            Object condition = query.get(key);
            if (!lookupSafe(condition)) return null;
            if (condition instanceof Document operators && operators.containsKey("$in")) {
                if (!(operators.get("$in") instanceof List<?> values)) return null;
                for (Object value : values) if (!lookupSafe(value)) return null;
            }
            part.put(key, condition);
        }
        return part;
    }

    private static boolean lookupSafe(Object value) {
        return value != null && !(value instanceof de.bwaldvogel.mongo.backend.Missing) && !(value instanceof BsonRegularExpression) && !(value instanceof java.util.regex.Pattern);
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
