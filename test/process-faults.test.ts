import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MongoClient } from 'mongodb';
import { Keyring } from '../src/crypto/keyring';
import type { StoredCredential, StoredWallet, StoredWalletEvent } from './helpers/stored';

/** The built service as a process, stopped politely under load and killed outright mid-burst. */
const ROOT = join(__dirname, '..');

interface Service {
  child: ChildProcess;
  url: Promise<string>;
  exited: Promise<number | null>;
  /** Log lines so far. */
  lines(): string[];
}

function start(dataDir: string, extra: Record<string, string> = {}): Service {
  const script = join(ROOT, 'dist', 'main.js');
  if (!existsSync(script)) throw new Error('dist/main.js is missing: npm test builds it first');
  const child = spawn(process.execPath, [script], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      NODE_ENV: 'development',
      DATA_DIR: dataDir,
      PORT: '0',
      LOG_LEVEL: 'info',
      ...extra,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const url = new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const line = out.split('\n').find((l) => l.includes('wallet service listening'));
      if (line) resolve((JSON.parse(line) as { url: string }).url.replace(/\/graphql$/, ''));
    });
    child.once('exit', () => reject(new Error(`the service exited before listening:\n${out}`)));
  });
  url.catch(() => undefined);
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  );
  return { child, url, exited, lines: () => out.split('\n') };
}

async function gql<T>(
  url: string,
  query: string,
  variables: Record<string, unknown> = {},
  token?: string,
): Promise<{ data?: T; errors?: unknown[] }> {
  const response = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify({ query, variables }),
  });
  return (await response.json()) as { data?: T; errors?: unknown[] };
}

const REGISTER =
  'mutation ($e: String!) { register(input: { email: $e, password: "correct horse battery" }) { token } }';
const LOGIN =
  'mutation Login($e: String!) { login(email: $e, password: "correct horse battery") { token } }';

describe('process faults', () => {
  it('on SIGTERM under load, finishes every accepted request and exits 0 within its grace period', async () => {
    // Concurrent logins of one account count against the login limit until they succeed: room for
    // the burst.
    const service = start(mkdtempSync(join(tmpdir(), 'wallet-term-')), {
      SHUTDOWN_GRACE_MS: '5000',
      LOG_LEVEL: 'debug',
      RATE_LIMIT_LOGIN_FAILURES: '100',
    });
    const url = await service.url;
    await gql(url, REGISTER, { e: 'load@example.com' });
    // Logins spend real time on argon2 (a few at a time): once the service has received all 20,
    // most are still running or waiting.
    const finished: number[] = [];
    const burst = Array.from({ length: 20 }, () =>
      gql<{ login: { token: string } }>(url, LOGIN, { e: 'load@example.com' }).then((answer) => {
        finished.push(Date.now());
        return answer;
      }),
    );
    const received = () =>
      service.lines().filter((line) => line.includes('request received')).length;
    // The registration above, and the 20 logins.
    while (received() < 21) await new Promise((resolve) => setTimeout(resolve, 10));
    const signalled = Date.now();
    service.child.kill('SIGTERM');
    const answers = await Promise.all(burst);
    expect(answers.every((a) => typeof a.data?.login.token === 'string')).toBe(true);
    expect(finished.filter((at) => at > signalled).length).toBeGreaterThan(0);
    expect(await service.exited).toBe(0);
    expect(Date.now() - signalled).toBeLessThan(5_000 + 5_000);
  });

  it('after kill -9 mid-burst, keeps every acknowledged write whole', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'wallet-kill-'));
    const first = start(dataDir);
    const url = await first.url;
    const token = (
      await gql<{ register: { token: string } }>(url, REGISTER, { e: 'burst@example.com' })
    ).data!.register.token;
    const binance = (
      await gql<{ walletDefinition: { id: string } }>(
        url,
        '{ walletDefinition(slug: "binance") { id } }',
      )
    ).data!.walletDefinition.id;

    const acknowledged = { credentials: new Map<string, string>(), wallets: new Set<string>() };
    let stop = false;
    const writer = async (n: number) => {
      for (let i = 0; !stop; i++) {
        const secret = `secret-${n}-${i}-${'s'.repeat(32)}`;
        const created = await gql<{ createCredential: { id: string } }>(
          url,
          'mutation ($i: CreateCredentialInput!) { createCredential(input: $i) { id } }',
          {
            i: {
              walletId: binance,
              name: `c${n}-${i}`,
              values: [
                { key: 'api_key', value: `key-${n}-${i}-${'k'.repeat(20)}` },
                { key: 'api_secret', value: secret },
              ],
            },
          },
          token,
        ).catch(() => undefined);
        if (!created?.data) continue;
        acknowledged.credentials.set(created.data.createCredential.id, secret);
        const wallet = await gql<{ createUserWallet: { id: string } }>(
          url,
          'mutation ($i: CreateUserWalletInput!) { createUserWallet(input: $i) { id } }',
          {
            i: {
              credentialId: created.data.createCredential.id,
              name: 'w',
              userLimits: { maxTotalRisk: 100, tradingMode: 'MODERATE' },
            },
          },
          token,
        ).catch(() => undefined);
        if (wallet?.data) acknowledged.wallets.add(wallet.data.createUserWallet.id);
      }
    };
    const writers = Array.from({ length: 8 }, (_, n) => writer(n));
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    first.child.kill('SIGKILL');
    stop = true;
    await Promise.all(writers);
    await first.exited;
    expect(acknowledged.credentials.size).toBeGreaterThan(5);

    const second = start(dataDir);
    await second.url;
    const { uri } = JSON.parse(readFileSync(join(dataDir, 'mongo', 'engine.json'), 'utf8')) as {
      uri: string;
    };
    const { ENCRYPTION_KEY } = JSON.parse(readFileSync(join(dataDir, 'secrets.json'), 'utf8')) as {
      ENCRYPTION_KEY: string;
    };
    const client = await MongoClient.connect(uri);
    try {
      const db = client.db('wallet_service');
      const keyring = new Keyring([ENCRYPTION_KEY]);
      for (const [id, secret] of acknowledged.credentials) {
        const doc = await db
          .collection<StoredCredential>('credentials')
          .findOne({ _id: new (await import('mongodb')).ObjectId(id) });
        expect(doc).not.toBeNull();
        expect(keyring.decrypt(doc!.credentials.api_secret)).toBe(secret);
      }
      const walletIds = [...acknowledged.wallets];
      const stored = await db.collection<StoredWallet>('user_wallets').find({}).toArray();
      expect(stored.map((w) => w._id.toHexString())).toEqual(expect.arrayContaining(walletIds));
      // Nothing half-written, acknowledged or not.
      for (const doc of await db.collection<StoredCredential>('credentials').find({}).toArray())
        expect(() => keyring.decrypt(doc.credentials.api_secret)).not.toThrow();
      for (const w of stored) {
        expect(w.version).toBe(0);
        expect(Object.keys(w.ai_managed_state).sort()).toEqual(
          [
            'adaptive_stop_loss',
            'confidence_level',
            'current_leverage',
            'current_max_position_size',
            'current_risk',
            'daily_pnl',
            'last_ai_decision',
            'market_sentiment',
            'open_positions',
            'risk_score',
          ].sort(),
        );
        expect(await db.collection('credentials').countDocuments({ _id: w.credential_id })).toBe(1);
        // Its one CREATED event was written with it: in the trail, in its outbox, or (killed
        // between the copy and the pull) the same event in both, which the sweep settles.
        const delivered = await db
          .collection('user_wallet_events')
          .find({ wallet_id: w._id, kind: 'created' })
          .toArray();
        const pending = (
          (w.pending_events ?? []) as Array<{ _id: { toHexString(): string }; kind: string }>
        ).filter((e) => e.kind === 'created');
        expect(new Set([...delivered, ...pending].map((e) => e._id.toHexString())).size).toBe(1);
      }
      // And no event of a wallet that is not there.
      const walletsWithEvents: Array<{ toHexString(): string }> = await db
        .collection<StoredWalletEvent>('user_wallet_events')
        .distinct('wallet_id');
      const storedIds = new Set(stored.map((w) => w._id.toHexString()));
      expect(
        walletsWithEvents.map((id) => id.toHexString()).filter((id) => !storedIds.has(id)),
      ).toEqual([]);
    } finally {
      await client.close();
      second.child.kill('SIGTERM');
      expect(await second.exited).toBe(0);
    }
  });
});
