import { MongoClient, ObjectId, type Collection, type Db, type Filter } from 'mongodb';
import { testDatabaseUri } from './helpers/app';

/**
 * What the service relies on from its database, proven on whatever engine the tests run
 * (mongod, or the offline mongo-java-server). If one of these fails, the code that leans on it
 * is wrong on that engine.
 */
describe('engine fidelity', () => {
  let uri: string;
  let client: MongoClient;
  let db: Db;

  beforeAll(async () => {
    uri = testDatabaseUri();
    client = await MongoClient.connect(uri);
    db = client.db();
  });

  afterAll(async () => {
    await db.dropDatabase();
    await client.close();
  });

  it('lets exactly one of two concurrent conditional updates on one version match', async () => {
    const col: Collection<{ _id: number; version: number; by: string | null }> =
      db.collection('versions');
    await col.insertOne({ _id: 1, version: 0, by: null });
    for (let round = 0; round < 25; round++) {
      const [a, b] = await Promise.all(
        ['a', 'b'].map((by) =>
          col.updateOne({ _id: 1, version: round }, { $set: { by }, $inc: { version: 1 } }),
        ),
      );
      expect(a.matchedCount + b.matchedCount).toBe(1);
    }
    expect(await col.findOne({ _id: 1 })).toMatchObject({ version: 25 });
  });

  it('keeps one winner among many concurrent conditional updates', async () => {
    const col: Collection<{ _id: number; version: number }> = db.collection('many');
    await col.insertOne({ _id: 1, version: 0 });
    const results = await Promise.all(
      Array.from({ length: 20 }, () =>
        col.updateOne({ _id: 1, version: 0 }, { $inc: { version: 1 } }),
      ),
    );
    expect(results.filter((r) => r.matchedCount === 1)).toHaveLength(1);
  });

  it('reports a unique-index violation as code 11000 on insert and on update', async () => {
    const col: Collection<{ _id: number; slug: string }> = db.collection('unique');
    await col.createIndex({ slug: 1 }, { unique: true });
    await col.insertMany([
      { _id: 1, slug: 'a' },
      { _id: 2, slug: 'b' },
    ]);
    await expect(col.insertOne({ _id: 3, slug: 'a' })).rejects.toMatchObject({ code: 11000 });
    await expect(col.updateOne({ _id: 2 }, { $set: { slug: 'a' } })).rejects.toMatchObject({
      code: 11000,
    });
    await expect(col.findOneAndUpdate({ _id: 2 }, { $set: { slug: 'a' } })).rejects.toMatchObject({
      code: 11000,
    });
    expect(await col.findOne({ _id: 2 })).toEqual({ _id: 2, slug: 'b' });
  });

  it('keeps a sparse unique index unique among documents that have the field, and leaves out those that lack it', async () => {
    const col: Collection<{ _id: number; slot?: string }> = db.collection('sparse-unique');
    await col.createIndex({ slot: 1 }, { unique: true, sparse: true });
    await col.insertMany([{ _id: 1 }, { _id: 2 }, { _id: 3, slot: 'u:0' }]);
    await expect(col.insertOne({ _id: 4, slot: 'u:0' })).rejects.toMatchObject({ code: 11000 });
    const race = await Promise.allSettled(
      Array.from({ length: 8 }, (_, i) => col.insertOne({ _id: 10 + i, slot: 'u:1' })),
    );
    expect(race.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(await col.countDocuments()).toBe(4);
  });

  it('reports concurrent inserts of one unique key as one success and 11000 for the rest', async () => {
    const col: Collection<{ slug: string }> = db.collection('unique-race');
    await col.createIndex({ slug: 1 }, { unique: true });
    const results = await Promise.allSettled(
      Array.from({ length: 10 }, () => col.insertOne({ slug: 'same' })),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    for (const r of results)
      if (r.status === 'rejected') expect(r.reason).toMatchObject({ code: 11000 });
  });

  it('answers $in with sort', async () => {
    const col: Collection<{ _id: number; order: number; name: string }> = db.collection('sorted');
    await col.insertMany([
      { _id: 1, order: 2, name: 'b' },
      { _id: 2, order: 1, name: 'z' },
      { _id: 3, order: 1, name: 'a' },
      { _id: 4, order: 0, name: 'x' },
    ]);
    const found = await col
      .find({ _id: { $in: [1, 2, 3] } })
      .sort({ order: 1, name: 1 })
      .toArray();
    expect(found.map((d) => d._id)).toEqual([3, 2, 1]);
  });

  it('returns the updated document from findOneAndUpdate', async () => {
    const col: Collection<{ _id: number; n: number }> = db.collection('fau');
    await col.insertOne({ _id: 1, n: 1 });
    const after = await col.findOneAndUpdate(
      { _id: 1 },
      { $inc: { n: 41 } },
      { returnDocument: 'after' },
    );
    expect(after).toEqual({ _id: 1, n: 42 });
    const none = await col.findOneAndUpdate(
      { _id: 2 },
      { $inc: { n: 1 } },
      { returnDocument: 'after' },
    );
    expect(none).toBeNull();
  });

  it('upserts with $setOnInsert only on insert', async () => {
    const col: Collection<{ slug: string; name: string; order: number }> = db.collection('upsert');
    await col.updateOne(
      { slug: 'x' },
      { $set: { name: 'one' }, $setOnInsert: { order: 1 } },
      { upsert: true },
    );
    await col.updateOne(
      { slug: 'x' },
      { $set: { name: 'two' }, $setOnInsert: { order: 9 } },
      { upsert: true },
    );
    expect(await col.findOne({ slug: 'x' }, { projection: { _id: 0 } })).toEqual({
      slug: 'x',
      name: 'two',
      order: 1,
    });
  });

  it('applies $min together with $set and $inc in one update', async () => {
    const col: Collection<{
      _id: number;
      limit: number;
      size: number;
      leverage: number;
      version: number;
    }> = db.collection('min');
    await col.insertOne({ _id: 1, limit: 1000, size: 800, leverage: 5, version: 3 });
    await col.updateOne(
      { _id: 1 },
      { $set: { limit: 500 }, $min: { size: 500, leverage: 10 }, $inc: { version: 1 } },
    );
    expect(await col.findOne({ _id: 1 })).toEqual({
      _id: 1,
      limit: 500,
      size: 500,
      leverage: 5,
      version: 4,
    });
  });

  it('matches null against a missing field, and ranges combined on one field', async () => {
    const col: Collection<{ _id: number; at?: Date | null; n: number }> = db.collection('nulls');
    await col.insertMany([
      { _id: 1, n: 5 },
      { _id: 2, at: null, n: 10 },
      { _id: 3, at: new Date(0), n: 15 },
    ]);
    const open = await col
      .find({ $or: [{ at: null }, { at: { $lte: new Date(1000) } }] })
      .sort({ _id: 1 })
      .toArray();
    expect(open.map((d) => d._id)).toEqual([1, 2, 3]);
    expect((await col.find({ n: { $gte: 10, $lt: 15 } }).toArray()).map((d) => d._id)).toEqual([2]);
  });

  it('aggregates the newest n per group ($sort, $group with $push, $slice)', async () => {
    const col: Collection<{ wallet: number; at: Date }> = db.collection('trail');
    for (const wallet of [1, 2, 3])
      for (let i = 0; i < 4; i++) await col.insertOne({ wallet, at: new Date(i * 1000) });
    const groups = await col
      .aggregate<{ _id: number; events: Array<{ at: Date }> }>([
        { $match: { wallet: { $in: [1, 2] } } },
        { $sort: { at: -1 } },
        { $group: { _id: '$wallet', events: { $push: '$$ROOT' } } },
        { $project: { events: { $slice: ['$events', 2] } } },
      ])
      .toArray();
    expect(groups.map((g) => g._id).sort()).toEqual([1, 2]);
    for (const g of groups) expect(g.events.map((e) => e.at.getTime())).toEqual([3000, 2000]);
  });

  it('keeps an outbox in a document: $push $each with a conditional update, $pull by ids, a range on an array of subdocuments', async () => {
    type Pending = { _id: number; at: Date };
    const col: Collection<{ _id: number; version: number; pending: Pending[] }> =
      db.collection('outbox');
    await col.createIndex({ 'pending.at': 1 });
    await col.insertMany([
      { _id: 1, version: 0, pending: [] },
      { _id: 2, version: 0, pending: [] },
    ]);
    const pushed = await col.findOneAndUpdate(
      { _id: 1, version: 0 },
      {
        $set: { version: 1 },
        $push: {
          pending: {
            $each: [
              { _id: 10, at: new Date(1000) },
              { _id: 11, at: new Date(5000) },
            ],
          },
        },
      },
      { returnDocument: 'after' },
    );
    expect(pushed!.pending.map((p) => p._id)).toEqual([10, 11]);
    expect(
      await col.findOneAndUpdate(
        { _id: 1, version: 0 },
        { $push: { pending: { $each: [{ _id: 12, at: new Date(0) }] } } },
      ),
    ).toBeNull();

    // Only documents with an entry older than the cutoff; empty arrays never match.
    expect(
      (await col.find({ 'pending.at': { $lt: new Date(2000) } }).toArray()).map((d) => d._id),
    ).toEqual([1]);
    expect(await col.countDocuments({ 'pending.at': { $lt: new Date(500) } })).toBe(0);

    await col.updateOne({ _id: 1 }, { $pull: { pending: { _id: { $in: [10, 99] } } } });
    expect((await col.findOne({ _id: 1 }))!).toMatchObject({ version: 1, pending: [{ _id: 11 }] });

    // A provisional entry replaced in place; the update's pre-image, and the deleted document,
    // returned whole.
    await col.updateOne(
      { _id: 1, 'pending._id': 11 },
      { $set: { 'pending.$': { _id: 11, at: new Date(6000) } } },
    );
    expect((await col.findOne({ _id: 1 }))!.pending).toEqual([{ _id: 11, at: new Date(6000) }]);
    const replaced = await col.findOneAndUpdate(
      { _id: 2 },
      { $inc: { version: 1 }, $push: { pending: { $each: [{ _id: 20, at: new Date(0) }] } } },
      { returnDocument: 'before' },
    );
    expect(replaced).toEqual({ _id: 2, version: 0, pending: [] });
    expect(await col.findOneAndDelete({ _id: 2 })).toEqual({
      _id: 2,
      version: 1,
      pending: [{ _id: 20, at: new Date(0) }],
    });
  });

  it('keeps TTL indexes with their expireAfterSeconds, changed by collMod on mongod and by drop and create on mongo-java-server; only mongod expires documents itself', async () => {
    const col: Collection<{ at: Date }> = db.collection('ttl');
    const ttl = async () =>
      (await col.indexes())
        .filter((i) => JSON.stringify(i.key) === '{"at":1}')
        .map((i) => i.expireAfterSeconds);
    await col.createIndex({ at: 1 }, { name: 'at_1', expireAfterSeconds: 3600 });
    expect(await ttl()).toEqual([3600]);
    const mongod = 'gitVersion' in (await db.admin().command({ buildInfo: 1 }));
    const collMod = () =>
      db.command({ collMod: 'ttl', index: { keyPattern: { at: 1 }, expireAfterSeconds: 0 } });
    if (mongod) {
      await collMod();
    } else {
      // mongo-java-server has no collMod: db/retention.ts drops the index and creates it again.
      await expect(collMod()).rejects.toMatchObject({ code: 59 });
      await col.dropIndex('at_1');
      await col.createIndex({ at: 1 }, { name: 'at_1', expireAfterSeconds: 0 });
    }
    expect(await ttl()).toEqual([0]);

    await col.insertOne({ at: new Date(Date.now() - 60_000) });
    if (mongod) {
      // mongod's TTL monitor runs every ttlMonitorSleepSecs (60 by default).
      await db.admin().command({ setParameter: 1, ttlMonitorSleepSecs: 1 });
      try {
        const deadline = Date.now() + 30_000;
        while ((await col.countDocuments()) > 0 && Date.now() < deadline)
          await new Promise((resolve) => setTimeout(resolve, 200));
        expect(await col.countDocuments()).toBe(0);
      } finally {
        await db.admin().command({ setParameter: 1, ttlMonitorSleepSecs: 60 });
      }
    } else {
      // mongo-java-server never expires anything: the service deletes what expired itself
      // (db/retention.ts, hourly).
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      expect(await col.countDocuments()).toBe(1);
    }
  });

  it('passes a comment on every command the service tags as background work', async () => {
    const col: Collection<{ _id: number; n: number }> = db.collection('comments');
    const comments: Array<[string, unknown]> = [];
    const listener = (event: { commandName: string; command: { comment?: unknown } }) =>
      comments.push([event.commandName, event.command.comment]);
    const monitored = await MongoClient.connect(uri, { monitorCommands: true });
    monitored.on('commandStarted', listener);
    try {
      const c = monitored.db().collection<{ _id: number; n: number }>('comments');
      const comment = 'background: test';
      await c.insertOne({ _id: 1, n: 1 }, { comment });
      await c.find({}, { comment }).toArray();
      await c.findOneAndUpdate({ _id: 1 }, { $set: { n: 2 } }, { comment });
      await c.updateOne({ _id: 1 }, { $set: { n: 3 } }, { comment });
      await c.aggregate([{ $match: {} }], { comment }).toArray();
      await c.deleteMany({ n: 0 }, { comment });
    } finally {
      await monitored.close();
    }
    expect(
      comments.filter(([name]) =>
        ['insert', 'find', 'findAndModify', 'update', 'aggregate', 'delete'].includes(name),
      ),
    ).toEqual(
      ['insert', 'find', 'findAndModify', 'update', 'aggregate', 'delete'].map((name) => [
        name,
        'background: test',
      ]),
    );
    expect(await col.findOne({ _id: 1 })).toEqual({ _id: 1, n: 3 });
  });

  it('inserts the rest of an unordered batch past duplicate ids, reporting each as 11000', async () => {
    const col: Collection<{ _id: number }> = db.collection('delivered');
    await col.insertOne({ _id: 1 });
    const error = await col
      .insertMany([{ _id: 1 }, { _id: 2 }, { _id: 3 }], { ordered: false })
      .catch((e: unknown) => e);
    expect(
      (error as { writeErrors?: Array<{ code: number }> }).writeErrors?.map((w) => w.code),
    ).toEqual([11000]);
    expect(await col.countDocuments()).toBe(3);
  });
  it('applies an unordered bulkWrite of conditional updateOne ops, counting only the matched ones', async () => {
    const col: Collection<{ _id: number; version: number; n: number; pending: number[] }> =
      db.collection('bulk');
    await col.insertMany(
      Array.from({ length: 5 }, (_, i) => ({ _id: i, version: 3, n: 0, pending: [] })),
    );
    const result = await col.bulkWrite(
      [
        // Two on the same version of one document: exactly one matches.
        {
          updateOne: {
            filter: { _id: 0, version: 3 },
            update: { $set: { n: 1 }, $inc: { version: 1 }, $push: { pending: { $each: [100] } } },
          },
        },
        {
          updateOne: {
            filter: { _id: 0, version: 3 },
            update: { $set: { n: 2 }, $inc: { version: 1 }, $push: { pending: { $each: [101] } } },
          },
        },
        {
          updateOne: {
            filter: { _id: 1, version: 2 },
            update: { $set: { n: 9 }, $inc: { version: 1 } },
          },
        },
        {
          updateOne: {
            filter: { _id: 2, version: 3, n: { $gte: 0 } },
            update: {
              $set: { n: 3 },
              $inc: { version: 1 },
              $push: { pending: { $each: [102, 103] } },
            },
          },
        },
        { updateOne: { filter: { _id: 99, version: 3 }, update: { $set: { n: 4 } } } },
      ],
      { ordered: false },
    );
    expect(result.matchedCount).toBe(2);
    expect(result.modifiedCount).toBe(2);
    const docs = await col.find().sort({ _id: 1 }).toArray();
    expect(docs[0]).toMatchObject({ version: 4 });
    // Which of the two landed shows in the pushed entry, and only one of them did.
    expect(docs[0].pending).toHaveLength(1);
    expect(docs[0].n).toBe(docs[0].pending[0] - 99);
    expect(docs[1]).toMatchObject({ version: 3, n: 0 });
    expect(docs[2]).toMatchObject({ version: 4, n: 3, pending: [102, 103] });
    // One $pull of ids across documents.
    await col.updateMany(
      { _id: { $in: [0, 2] } },
      { $pull: { pending: { $in: [100, 101, 102, 103] } } },
    );
    expect((await col.find({ _id: { $in: [0, 2] } }).toArray()).map((d) => d.pending)).toEqual([
      [],
      [],
    ]);
  });

  it('matches conditional updates on exactly the keys of a unique compound index with nested paths', async () => {
    type Wallet = {
      _id: number;
      version: number;
      limits: { max: number; mode: string };
      status: string;
      n: number;
    };
    const col: Collection<Wallet> = db.collection('keyed');
    await col.createIndex(
      { _id: 1, version: 1, 'limits.max': 1, 'limits.mode': 1, status: 1 },
      { unique: true },
    );
    await col.insertMany(
      Array.from({ length: 4 }, (_, i) => ({
        _id: i,
        version: 2,
        limits: { max: 100, mode: 'moderate' },
        status: 'active',
        n: 0,
      })),
    );
    await col.updateOne({ _id: 1 }, { $set: { 'limits.max': 50 } });
    await col.updateOne({ _id: 2 }, { $set: { status: 'user_paused' } });
    const on = (_id: number) => ({
      _id,
      version: 2,
      'limits.max': 100,
      'limits.mode': 'moderate',
      status: 'active',
    });
    const result = await col.bulkWrite(
      [0, 1, 2, 3].map((_id) => ({
        updateOne: { filter: on(_id), update: { $inc: { version: 1, n: 1 } } },
      })),
      { ordered: false },
    );
    // Only the wallets still in the state the filter names: not 1 (its limit moved), not 2
    // (paused).
    expect(result.matchedCount).toBe(2);
    expect(
      (await col.find().sort({ _id: 1 }).toArray()).map((d) => [d._id, d.version, d.n]),
    ).toEqual([
      [0, 3, 1],
      [1, 2, 0],
      [2, 2, 0],
      [3, 3, 1],
    ]);
    expect(await col.findOneAndUpdate(on(0), { $inc: { n: 1 } })).toBeNull();
    expect(
      await col.findOneAndUpdate(
        { ...on(0), version: 3 },
        { $inc: { n: 1 } },
        { returnDocument: 'after' },
      ),
    ).toMatchObject({ _id: 0, n: 2 });
  });

  it("answers queries naming a unique index's keys and more fields as a scan would (matches and misses)", async () => {
    type Doc = { _id: number; version: number; status: string; code?: string | null; n: number };
    const col: Collection<Doc> = db.collection('covered');
    await col.createIndex({ code: 1 }, { unique: true, sparse: true });
    await col.insertMany(
      Array.from({ length: 50 }, (_, i) => ({
        _id: i,
        version: i % 3,
        status: i % 2 ? 'active' : 'paused',
        ...(i < 10 ? { code: `c${i}` } : {}),
        n: 0,
      })),
    );
    expect(await col.findOne({ _id: 7, version: 1, status: 'active' })).toMatchObject({ _id: 7 });
    expect(await col.findOne({ _id: 7, version: 2 })).toBeNull();
    expect(await col.findOne({ _id: 7, status: 'paused' })).toBeNull();
    expect(
      (
        await col
          .find({ _id: { $in: [1, 2, 3, 4, 5] }, status: 'active' })
          .sort({ _id: 1 })
          .toArray()
      ).map((d) => d._id),
    ).toEqual([1, 3, 5]);
    expect(
      (await col.find({ _id: 4, $or: [{ version: 0 }, { version: 1 }] }).toArray()).map(
        (d) => d._id,
      ),
    ).toEqual([4]);
    expect(
      (
        await col
          .find({ _id: { $gt: 45 }, status: 'active' })
          .sort({ _id: 1 })
          .toArray()
      ).map((d) => d._id),
    ).toEqual([47, 49]);
    expect(await col.findOne({ code: 'c3', status: 'active' })).toMatchObject({ _id: 3 });
    expect(await col.findOne({ code: 'c3', status: 'paused' })).toBeNull();
    // A sparse index leaves out documents without the field: null must still find those (in find,
    // which may use an index, not only in countDocuments, an aggregation).
    expect(await col.countDocuments({ code: null, status: 'active' })).toBe(20);
    expect(await col.find({ code: null, status: 'active' }).toArray()).toHaveLength(20);
    expect(
      await col.find({ code: { $in: [null, 'c1'] }, status: 'active' }).toArray(),
    ).toHaveLength(21);
    // A regular expression in an $in is a pattern, not a value to look up.
    expect(
      (await col.find({ code: { $in: [/^c[12]$/] }, status: 'active' }).toArray()).map(
        (d) => d._id,
      ),
    ).toEqual([1]);
    const updated = await col.updateMany(
      { _id: { $in: [10, 11, 12] }, version: 1 },
      { $inc: { n: 1 } },
    );
    expect(updated.matchedCount).toBe(1);
    expect(await col.findOne({ _id: 10 })).toMatchObject({ n: 1 });
    expect(await col.findOneAndUpdate({ _id: 11, version: 1 }, { $inc: { n: 1 } })).toBeNull();
    expect((await col.deleteMany({ _id: { $in: [20, 21] }, status: 'paused' })).deletedCount).toBe(
      1,
    );
    expect(await col.countDocuments()).toBe(49);
  });

  it('answers through non-unique indexes (dates, ids, arrays on the path) what a collection without them answers, through updates and deletes', async () => {
    type Doc = {
      _id: number;
      owner: ObjectId | null;
      at?: Date | null;
      pending: Array<{ at: Date }>;
      status: string;
    };
    const plain: Collection<Doc> = db.collection('unindexed');
    const indexed: Collection<Doc> = db.collection('indexed');
    await indexed.createIndex({ at: 1 });
    await indexed.createIndex({ owner: 1, status: 1 });
    await indexed.createIndex({ 'pending.at': 1 });
    const owners = [new ObjectId(), new ObjectId(), new ObjectId()];
    const t0 = Date.UTC(2026, 0, 1);
    const docs: Doc[] = Array.from({ length: 300 }, (_, i) => ({
      _id: i,
      owner: i % 7 === 0 ? null : owners[i % 3],
      ...(i % 5 === 0 ? {} : { at: new Date(t0 + (i % 50) * 1000) }),
      pending: i % 4 === 0 ? [{ at: new Date(t0 + i * 10) }, { at: new Date(t0 - i * 10) }] : [],
      status: i % 2 ? 'active' : 'paused',
    }));
    const both = async (op: (c: Collection<Doc>) => Promise<unknown>) => {
      await op(plain);
      await op(indexed);
    };
    await both((c) => c.insertMany(docs.map((d) => ({ ...d }))));
    const queries: Array<Filter<Doc>> = [
      { at: new Date(t0 + 7000) },
      { at: { $gte: new Date(t0 + 10_000), $lt: new Date(t0 + 20_000) } },
      { at: { $gt: new Date(t0 + 45_000) }, status: 'active' },
      { at: { $lte: new Date(t0) } },
      { at: { $in: [new Date(t0 + 1000), new Date(t0 + 2000)] } },
      { at: null },
      { owner: owners[1] },
      { owner: { $in: [owners[0], owners[2]] }, status: 'paused' },
      { owner: null },
      { 'pending.at': { $lt: new Date(t0) } },
      { 'pending.at': { $gte: new Date(t0 + 1000) } },
    ];
    const answers = async () => {
      const out: Array<[number[], number[]]> = [];
      for (const q of queries) {
        const [a, b] = await Promise.all(
          [plain, indexed].map((c) => c.find(q).sort({ _id: 1 }).toArray()),
        );
        out.push([a.map((d) => d._id), b.map((d) => d._id)]);
      }
      return out;
    };
    for (const [scanned, found] of await answers()) expect(found).toEqual(scanned);
    expect((await answers()).some(([scanned]) => scanned.length > 0)).toBe(true);
    await both((c) =>
      c.updateMany(
        { owner: owners[1] },
        { $set: { owner: owners[2], at: new Date(t0 + 999_000) } },
      ),
    );
    await both((c) => c.updateMany({ _id: { $in: [4, 8, 12] } }, { $set: { pending: [] } }));
    await both((c) => c.updateOne({ _id: 5 }, { $set: { at: new Date(t0 + 7000) } }));
    await both((c) =>
      c.deleteMany({ at: { $gte: new Date(t0 + 30_000), $lt: new Date(t0 + 40_000) } }),
    );
    const after = await answers();
    for (const [scanned, found] of after) expect(found).toEqual(scanned);
    expect(after[0][1]).toContain(5);
    expect(after[6][1]).toEqual([]);
  });

  it('pages on (a date, _id) with an $or cursor, ascending in find and descending in an aggregation', async () => {
    const col: Collection<{ _id: number; at: Date; w: number }> = db.collection('paged');
    // Ties on the date, so the _id decides.
    const docs = [5, 1, 4, 2, 3, 6].map((id) => ({
      _id: id,
      at: new Date(id <= 3 ? 1000 : 2000),
      w: id % 2,
    }));
    await col.insertMany(docs);
    await col.createIndex({ at: 1, _id: 1 });
    const page = (cursor: { at: Date; id: number }) =>
      col
        .find({
          at: { $gte: cursor.at },
          $or: [{ at: { $gt: cursor.at } }, { _id: { $gt: cursor.id } }],
        })
        .sort({ at: 1, _id: 1 })
        .limit(2)
        .toArray();
    expect((await page({ at: new Date(1000), id: 2 })).map((d) => d._id)).toEqual([3, 4]);
    expect((await page({ at: new Date(2000), id: 4 })).map((d) => d._id)).toEqual([5, 6]);
    const older = await col
      .aggregate<{ _id: number; ids: number[] }>([
        {
          $match: {
            w: { $in: [0, 1] },
            $or: [{ at: { $lt: new Date(2000) } }, { at: new Date(2000), _id: { $lt: 5 } }],
          },
        },
        { $sort: { at: -1, _id: -1 } },
        { $group: { _id: '$w', ids: { $push: '$_id' } } },
      ])
      .toArray();
    expect(Object.fromEntries(older.map((g) => [g._id, g.ids]))).toEqual({ 0: [4, 2], 1: [3, 1] });
  });
});
