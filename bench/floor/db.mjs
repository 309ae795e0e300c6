// The floor's database: the plain mongodb driver, the copy mongoose itself uses (so the driver is
// not a difference), with the service's pool size.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);
const mongodbEntry = require.resolve('mongodb', {
  paths: [dirname(require.resolve('mongoose/package.json'))],
});
const { MongoClient, ObjectId } = require(mongodbEntry);

export { ObjectId };

export const DRIVER_VERSION = JSON.parse(
  readFileSync(
    join(
      mongodbEntry.slice(
        0,
        mongodbEntry.lastIndexOf('node_modules/mongodb') + 'node_modules/mongodb'.length,
      ),
      'package.json',
    ),
    'utf8',
  ),
).version;

/** The client and the collections the floor reads and writes. */
export async function connect(uri) {
  const client = new MongoClient(uri, { maxPoolSize: 20, serverSelectionTimeoutMS: 5_000 });
  await client.connect();
  const db = client.db();
  return {
    client,
    users: db.collection('users'),
    definitions: db.collection('wallets'),
    credentials: db.collection('credentials'),
    userWallets: db.collection('user_wallets'),
    events: db.collection('user_wallet_events'),
  };
}
