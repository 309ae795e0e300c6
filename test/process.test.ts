import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MongoClient } from 'mongodb';
import { testDatabaseUri } from './helpers/app';
import { listeningUrl, ROOT, run, waitFor } from './helpers/processes';

/**
 * The service as a newcomer runs it: the built entry points as processes, with the embedded
 * database on a data directory of their own.
 */
async function graphql<T>(
  url: string,
  query: string,
  token?: string,
): Promise<{ data?: T; errors?: unknown[] }> {
  const response = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify({ query }),
  });
  return (await response.json()) as { data?: T; errors?: unknown[] };
}

describe('npm start (dist/main.js)', () => {
  it('starts on the embedded database, keeps data across a restart, and exits 0 on SIGTERM', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'wallet-data-'));
    const env = { NODE_ENV: 'development', DATA_DIR: dataDir, PORT: '0', LOG_LEVEL: 'info' };

    const first = run('main.js', env);
    const url = await waitFor('the first start', () => listeningUrl(first));
    expect((await fetch(`${url}/ready`)).status).toBe(200);
    const { ADMIN_PASSWORD } = JSON.parse(readFileSync(join(dataDir, 'secrets.json'), 'utf8')) as {
      ADMIN_PASSWORD: string;
    };
    const login = await graphql<{ login: { token: string } }>(
      url,
      `mutation { login(email: "admin@example.com", password: "${ADMIN_PASSWORD}") { token } }`,
    );
    const token = login.data!.login.token;
    const created = await graphql(
      url,
      `
        mutation {
          createWalletDefinition(
            input: {
              name: "Persisted"
              slug: "persisted"
              type: DEX
              authFields: [
                {
                  key: "private_key"
                  label: "Key"
                  type: PASSWORD
                  required: true
                  encrypted: true
                }
              ]
              features: {
                spot: true
                futures: false
                perpetuals: false
                leverage: { min: 1, max: 1 }
                supportedAssets: ["ETH"]
              }
              apiConfig: { baseUrl: "https://dex.example", rateLimit: 60 }
            }
          ) {
            slug
          }
        }
      `,
      token,
    );
    expect(created.errors).toBeUndefined();
    expect(first.stdout.join('\n')).not.toContain(ADMIN_PASSWORD);

    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(0);

    const second = run('main.js', env);
    const url2 = await waitFor('the restart', () => listeningUrl(second));
    const list = await graphql<{ walletDefinitions: Array<{ slug: string }> }>(
      url2,
      '{ walletDefinitions { slug } }',
    );
    expect(list.data!.walletDefinitions.map((d) => d.slug)).toEqual([
      'binance',
      'hyperliquid',
      'persisted',
    ]);
    second.child.kill('SIGINT');
    expect(await second.exited).toBe(0);
  });

  it('refuses to start in production without its secrets, listing every problem', async () => {
    const running = run('main.js', { NODE_ENV: 'production', JWT_SECRET: 'too-short', PORT: '0' });
    expect(await running.exited).toBe(1);
    const stderr = running.stderr.join('');
    expect(stderr).toContain('JWT_SECRET: too weak, must be at least 32 bytes');
    expect(stderr).toContain('ENCRYPTION_KEY: required in production');
    expect(stderr).not.toContain('too-short');
  });
});

describe('start-up failures', () => {
  // The test engine has no authentication, so a URI with a password fails in the handshake.
  const password = 'Db-Pa55w0rd/with:odd@chars';
  const uriWithPassword = () =>
    testDatabaseUri().replace('mongodb://', `mongodb://wallet:${encodeURIComponent(password)}@`);
  const forms = [password, encodeURIComponent(password)];

  it('the service logs why it could not start, without the database password', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'wallet-fail-'));
    const running = run('main.js', {
      NODE_ENV: 'development',
      DATA_DIR: dataDir,
      PORT: '0',
      LOG_LEVEL: 'info',
      MONGODB_URI: uriWithPassword(),
    });
    expect(await running.exited).toBe(1);
    const output = [...running.stdout, ...running.stderr].join('\n');
    expect(output).toContain('start-up failed');
    for (const form of forms) expect(output).not.toContain(form);
  });

  it("an entry point's failure message never carries a configured secret, whatever the error quotes", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'wallet-fail-'));
    const uri = uriWithPassword();
    // An error that quotes its URI, as a driver's could: the frame removes the password from it.
    const child = spawn(
      process.execPath,
      [
        '-e',
        "require('./dist/entry-point').runEntryPoint('probe', async () => { throw new Error('could not reach ' + process.env.MONGODB_URI); })",
      ],
      {
        cwd: ROOT,
        env: {
          PATH: process.env.PATH ?? '',
          NODE_ENV: 'development',
          DATA_DIR: dataDir,
          MONGODB_URI: uri,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    expect(await new Promise((resolve) => child.once('exit', resolve))).toBe(1);
    expect(stderr).toBe(
      `probe failed: could not reach ${uri.replace(encodeURIComponent(password), '[redacted]')}\n`,
    );
    for (const form of forms) expect(stderr).not.toContain(form);
  });

  it('seed says it failed, without the database password', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'wallet-fail-'));
    const running = run('seed-cli.js', {
      NODE_ENV: 'development',
      DATA_DIR: dataDir,
      MONGODB_URI: uriWithPassword(),
    });
    expect(await running.exited).toBe(1);
    const output = [...running.stdout, ...running.stderr].join('\n');
    expect(output).toMatch(/^seed failed: /m);
    for (const form of forms) expect(output).not.toContain(form);
  });
});

describe('npm run db (dist/db/db-cli.js)', () => {
  it('prints the URI of a working engine on a line by itself and stops on SIGTERM', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'wallet-db-'));
    const db = run('db/db-cli.js', { DATA_DIR: dataDir, NODE_ENV: 'development' });
    const uri = await waitFor('the URI', () =>
      db.stdout.find((line) => /^mongodb:\/\/127\.0\.0\.1:\d+\/$/.test(line)),
    );
    const client = await MongoClient.connect(uri);
    expect(await client.db('probe').command({ ping: 1 })).toMatchObject({ ok: 1 });
    await client.close();

    // The service started on the same data joins this engine instead of fighting over its file.
    const service = run('main.js', {
      NODE_ENV: 'development',
      DATA_DIR: dataDir,
      PORT: '0',
      LOG_LEVEL: 'info',
    });
    await waitFor('the service', () => listeningUrl(service));
    expect(service.stdout.join('\n')).toContain(
      'using the embedded database already running on this data directory',
    );
    service.child.kill('SIGTERM');
    expect(await service.exited).toBe(0);

    db.child.kill('SIGTERM');
    expect(await db.exited).toBe(0);
  });
});

describe('npm run seed (dist/seed-cli.js)', () => {
  it('seeds the catalog into MONGODB_URI, idempotently', async () => {
    const uri = testDatabaseUri();
    for (let i = 0; i < 2; i++) {
      const seed = run('seed-cli.js', {
        MONGODB_URI: uri,
        NODE_ENV: 'test',
        JWT_SECRET: 'x'.repeat(32),
        ENCRYPTION_KEY: 'a2V5LWZvci10ZXN0cy1vbmx5LTMyLWJ5dGVzLWxvbmc=',
      });
      expect(await seed.exited).toBe(0);
      expect(seed.stdout).toEqual(['seeded: binance, hyperliquid']);
    }
    const client = await MongoClient.connect(uri);
    expect(await client.db().collection('wallets').countDocuments()).toBe(2);
    await client.db().dropDatabase();
    await client.close();
  });
});
