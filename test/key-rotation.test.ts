import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import mongoose, { Types } from 'mongoose';
import { Fernet } from '../src/crypto/fernet';
import { Keyring } from '../src/crypto/keyring';
import { createLogger } from '../src/core/logger';
import { systemCtx } from '../src/core/context';
import { ROTATION_JOB, rotateCredentialKeys } from '../src/modules/credentials/credential-rotation';
import {
  CreateCredentialDocument,
  UpdateCredentialDocument,
  WalletDefinitionDocument,
} from './generated/graphql';
import { startTestApp, TEST_JWT_SECRET, type TestApp } from './helpers/app';
import { registerUser, type TestUser } from './helpers/factories';
import type { StoredCredential } from './helpers/stored';

const OLD_KEY = Fernet.generateKey();
const NEW_KEY = Fernet.generateKey();
const logger = createLogger({ logLevel: 'silent' });

let t: TestApp;
let user: TestUser;
let binanceId: string;

const credentials = () => mongoose.connection.db!.collection('credentials');
const secretOf = (i: number, generation = 0) => `secret-${generation}-${i}-${'s'.repeat(40)}`;

/** A credential as an earlier deployment, still on the old key, stored it. */
async function storeUnderOldKey(i: number): Promise<Types.ObjectId> {
  const { insertedId } = await credentials().insertOne({
    user_id: new Types.ObjectId(user.id),
    wallet_id: new Types.ObjectId(binanceId),
    name: `old ${i}`,
    credentials: {
      api_key: `key-${i}-${'k'.repeat(20)}`,
      api_secret: new Fernet(OLD_KEY).encrypt(secretOf(i)),
    },
    environment: 'mainnet',
    is_connected: false,
    last_verified_at: null,
    connection_error: null,
    is_active: true,
    version: 0,
    last_test_at: null,
    created_at: new Date(),
    updated_at: new Date(),
  });
  return insertedId;
}

beforeAll(async () => {
  // The service during a rotation: it encrypts with the new key and still reads the old one.
  t = await startTestApp({ ENCRYPTION_KEY: undefined, ENCRYPTION_KEYS: `${NEW_KEY},${OLD_KEY}` });
  user = await registerUser(t);
  binanceId = (await t.gql(WalletDefinitionDocument, { slug: 'binance' })).data!.walletDefinition
    .id;
});
afterAll(() => t.close());

describe('key rotation', () => {
  it('moves every value to the new key while users edit theirs, losing nothing', async () => {
    const ids = await Promise.all(Array.from({ length: 30 }, (_, i) => storeUnderOldKey(i)));
    const viaApi = await t.gql(
      CreateCredentialDocument,
      {
        input: {
          walletId: binanceId,
          name: 'new',
          values: [
            { key: 'api_key', value: 'k'.repeat(24) },
            { key: 'api_secret', value: 'fresh-secret' },
          ],
        },
      },
      user.token,
    );

    // Users replace the values of every third credential while the rotation runs.
    const edits = ids
      .filter((_, i) => i % 3 === 0)
      .map((id, n) =>
        t.gql(
          UpdateCredentialDocument,
          {
            id: id.toHexString(),
            input: {
              values: [
                { key: 'api_key', value: `key-${n * 3}-${'k'.repeat(20)}` },
                { key: 'api_secret', value: secretOf(n * 3, 1) },
              ],
            },
          },
          user.token,
        ),
      );
    const [report] = await Promise.all([
      rotateCredentialKeys(systemCtx(logger, ROTATION_JOB), new Keyring([NEW_KEY, OLD_KEY])),
      ...edits,
    ]);
    expect(report).toMatchObject({ unreadable: 0, busy: 0 });
    expect(report.rotated + report.skipped).toBe(31);

    const newOnly = new Keyring([NEW_KEY]);
    for (const [i, id] of ids.entries()) {
      const doc = await credentials().findOne<StoredCredential>({ _id: id });
      expect(newOnly.decrypt(doc!.credentials.api_secret)).toBe(
        i % 3 === 0 ? secretOf(i, 1) : secretOf(i),
      );
    }
    const created = await credentials().findOne<StoredCredential>({
      _id: new Types.ObjectId(viaApi.data!.createCredential.id),
    });
    expect(newOnly.decrypt(created!.credentials.api_secret)).toBe('fresh-secret');

    const again = await rotateCredentialKeys(
      systemCtx(logger, ROTATION_JOB),
      new Keyring([NEW_KEY, OLD_KEY]),
    );
    expect(again).toMatchObject({ rotated: 0, unreadable: 0 });
  });

  it('reports a value no key can read and leaves it untouched', async () => {
    const id = await storeUnderOldKey(99);
    const foreign = new Fernet(Fernet.generateKey()).encrypt('unknowable');
    await credentials().updateOne({ _id: id }, { $set: { 'credentials.api_secret': foreign } });
    const report = await rotateCredentialKeys(
      systemCtx(logger, ROTATION_JOB),
      new Keyring([NEW_KEY, OLD_KEY]),
    );
    expect(report.unreadable).toBe(1);
    expect(report.unreadableIds).toEqual([id.toHexString()]);
    expect(
      (await credentials().findOne<StoredCredential>({ _id: id }))!.credentials.api_secret,
    ).toBe(foreign);
    await credentials().deleteOne({ _id: id });
  });

  it('runs as `npm run rotate-keys` (dist/rotate-keys-cli.js) and prints its counts', async () => {
    const script = join(__dirname, '..', 'dist', 'rotate-keys-cli.js');
    if (!existsSync(script))
      throw new Error('dist/rotate-keys-cli.js is missing: npm test builds it first');
    await storeUnderOldKey(100);
    const uri = mongoose.connection.getClient().options.hosts[0].toString();
    const child = spawn(process.execPath, [script], {
      env: {
        PATH: process.env.PATH ?? '',
        NODE_ENV: 'test',
        MONGODB_URI: `mongodb://${uri}/${mongoose.connection.name}`,
        ENCRYPTION_KEYS: `${NEW_KEY},${OLD_KEY}`,
        JWT_SECRET: TEST_JWT_SECRET,
      },
    });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(code).toBe(0);
    expect(stdout).toMatch(/^rotated 1, skipped \d+, could not read 0\n$/);
    expect(stdout).not.toContain(NEW_KEY);
  });
});
