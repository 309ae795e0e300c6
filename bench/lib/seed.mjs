// The benchmark's data, inserted with the plain mongodb driver (12,000 wallets in seconds): the
// catalog (catalog.mjs); users with 10, 100 and 1,000 wallets; 10,000 users of one wallet each,
// the first 2,000 of those wallets the agents' write pool; more users' wallets up to 12,000 in
// all; every wallet on its own credential, encrypted with the service's Keyring; the largest
// allowed request's balance history; an agent token's record.

import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { ObjectId } from 'mongodb';
import { DEFINITIONS } from './catalog.mjs';
import { check } from './graphql.mjs';
import {
  createServiceIndexes,
  initialAiState,
  Keyring,
  storedValues,
  toLimits,
} from './service-code.mjs';
import { SETTINGS } from './settings.mjs';

const DAY = 86_400_000;

const MODES = ['conservative', 'moderate', 'aggressive'];

const hex = (bytes) => randomBytes(bytes).toString('hex');

/** A plain value like a user's for an auth field, by its key. */
const PLAIN = {
  api_key: () => hex(16),
  api_secret: () => hex(24),
  passphrase: () => hex(8),
  private_key: () => `0x${hex(32)}`,
  wallet_address: () => `0x${hex(20)}`,
  mnemonic: () => Array.from({ length: 12 }, () => hex(3)).join(' '),
};

/** A credential's values for every auth field of its definition, as the service stores them. */
const credentialValues = (definition, keyring) =>
  storedValues(
    definition,
    definition.auth_fields.map((f) => ({ key: f.key, value: (PLAIN[f.key] ?? PLAIN.api_key)() })),
    keyring,
  );

/**
 * Seeds the database at `uri` (db: the plain driver's handle on it) for the service whose Config
 * is `config`: its indexes, its encryption keys.
 */
export async function seed({ db, uri, config }) {
  const keyring = new Keyring(config.encryptionKeys);
  const started = performance.now();
  const base = Date.now() - 30 * DAY;
  let clock = 0;
  const at = () => new Date(base + clock++ * 1_000);
  // After every creation time (12,000 wallets' and 10,100 users' clock ticks are well under a
  // day).
  const changedSince = new Date(base + DAY);

  // The service's own indexes, made by its own start-up code, so it starts as on a database it
  // has run on before: its createIndexes finds them all and builds nothing (the start-up target is
  // a restart's, not a first start's on 12,000 wallets).
  await createServiceIndexes(uri, config);

  const definitions = DEFINITIONS.map((d) => {
    const created = at();
    return { _id: new ObjectId(), ...d, created_at: created, updated_at: created, __v: 0 };
  });
  await db.collection('wallets').insertMany(definitions);
  const active = definitions.filter((d) => d.is_active);
  const bySlug = Object.fromEntries(definitions.map((d) => [d.slug, d]));

  const users = [];
  const newUser = (label, role = 'user') => {
    const created = at();
    const user = {
      _id: new ObjectId(),
      email: `bench-${label}@example.com`,
      name: `Bench ${label}`,
      role,
      // Never used to log in: the benchmark signs its tokens.
      password_hash: `$argon2id$v=19$m=19456,t=2,p=1$${randomBytes(16).toString('base64')}$${randomBytes(32).toString('base64')}`,
      created_at: created,
      updated_at: created,
      __v: 0,
    };
    users.push(user);
    return user;
  };

  const credentials = [];
  const wallets = [];
  let n = 0;
  // `first`: the index its first wallet has among the wallets of its kind, so that users of one
  // wallet each still get the kind's whole mix of exchanges, limits and credential states.
  const addWallets = (user, count, { definitionsFor, limitsFor }, first = 0) => {
    const ids = [];
    for (let i = first; i < first + count; i++, n++) {
      const definition = definitionsFor(i);
      const created = at();
      const credential = {
        _id: new ObjectId(),
        user_id: user._id,
        wallet_id: definition._id,
        name: `${definition.name} key ${i + 1}`,
        credentials: credentialValues(definition, keyring),
        environment: i % 7 === 6 ? 'testnet' : 'mainnet',
        is_connected: i % 3 !== 2,
        // As the service's own tests leave them, mid-interval: none due during the run (a due one
        // would load ccxt and call an exchange the benchmark doesn't have).
        connection_state: i % 3 !== 2 ? 'connected' : 'unreachable',
        last_checked_at: created,
        last_verified_at: i % 3 !== 2 ? created : null,
        connection_error: i % 3 === 2 ? 'the exchange could not be reached' : null,
        check_failures: i % 3 === 2 ? 1 : 0,
        check_due_at: null,
        next_check_at: null,
        is_active: true,
        version: 0,
        deleting_at: null,
        last_test_at: null,
        created_at: created,
        updated_at: created,
        __v: 0,
      };
      credentials.push(credential);
      const { status, ...input } = limitsFor(i, definition);
      const limits = toLimits(definition, input);
      const paused = status === 'user_paused';
      const _id = new ObjectId();
      if (!paused)
        credential.next_check_at = credential.check_due_at = new Date(
          Date.now() + 6 * 3_600_000 * (0.9 + Math.random() * 0.2),
        );
      wallets.push({
        _id,
        user_id: user._id,
        credential_id: credential._id,
        wallet_id: definition._id,
        name: `${definition.name} wallet ${i + 1}`,
        user_limits: limits,
        ai_managed_state: initialAiState(definition, limits),
        status,
        pause_reason: paused ? 'paused by the user' : null,
        live_key: paused ? _id : credential._id,
        version: 0,
        // Every tenth wallet was changed by its user lately (managedWalletChanges finds those).
        user_changed_at:
          n % (SETTINGS.totalWallets / SETTINGS.changedWallets) === 0
            ? new Date(changedSince.getTime() + n * 1_000)
            : created,
        created_at: created,
        updated_at: created,
        __v: 0,
      });
      ids.push(_id);
    }
    return ids;
  };

  const mixed = {
    definitionsFor: (i) => active[i % active.length],
    limitsFor: (i, definition) => ({
      maxTotalRisk: 1_000 + (i % 50) * 250,
      allowedSymbols:
        i % 2 === 0
          ? null
          : definition.features.supported_assets.slice(0, 2).map((a) => `${a}/USDT`),
      tradingMode: MODES[i % 3],
      status: i % 10 === 9 ? 'user_paused' : 'active',
    }),
  };
  // Agents write inside these limits: leverage 1-3 fits every mode on both exchanges, position
  // sizes stay under max_total_risk, risk stays under it (no automatic pause).
  const writable = {
    definitionsFor: (i) => (i % 2 === 0 ? bySlug.binance : bySlug.hyperliquid),
    limitsFor: (i) => ({
      maxTotalRisk: 50_000,
      allowedSymbols: null,
      tradingMode: MODES[i % 3],
      status: 'active',
    }),
  };

  const admin = newUser('admin', 'admin');
  const listUsers = {};
  for (const size of [10, 100, 1_000]) {
    listUsers[size] = newUser(`wallets-${size}`);
    addWallets(listUsers[size], size, mixed);
  }
  // Users of one wallet each, as most of a platform's are: each keeps a frontend subscribed to
  // its wallet in the 10,000-subscriber scenario. The first ones' wallets are the agents' write
  // pool.
  const writePool = [];
  const oneWalletUsers = [];
  for (let u = 0; u < SETTINGS.oneWalletUsers; u++) {
    const user = newUser(`one-wallet-${u}`);
    const inPool = u < SETTINGS.writePool;
    const [walletId] = inPool
      ? addWallets(user, 1, writable, u)
      : addWallets(user, 1, mixed, u - SETTINGS.writePool);
    if (inPool) writePool.push(walletId);
    oneWalletUsers.push({ user, walletId: walletId.toHexString() });
  }
  for (let u = 0; n < SETTINGS.totalWallets; u++)
    addWallets(newUser(`other-${u}`), Math.min(100, SETTINGS.totalWallets - n), mixed);

  // The largest allowed request's data: 500 snapshots of 100 assets on one credential of the
  // 10-wallet user.
  const heavyCredential = credentials.find((c) => c.user_id.equals(listUsers[10]._id));
  const snapshotAt = Date.now();
  await db.collection('credential_balances').insertMany(
    Array.from({ length: SETTINGS.heavySnapshots }, (_, i) => ({
      credential_id: heavyCredential._id,
      at: new Date(snapshotAt - i * 60_000),
      balances: Array.from({ length: SETTINGS.heavyAssets }, (_, a) => ({
        asset: `ASSET${a}`,
        free: 1_000 + a + i / 1_000,
        used: a / 7,
        total: 1_000 + a + a / 7 + i / 1_000,
      })),
    })),
  );
  await db.collection('users').insertMany(users);
  for (let i = 0; i < credentials.length; i += 1_000)
    await db.collection('credentials').insertMany(credentials.slice(i, i + 1_000));
  for (let i = 0; i < wallets.length; i += 1_000)
    await db.collection('user_wallets').insertMany(wallets.slice(i, i + 1_000));
  // The service honours an agent token only while its record is here
  // (src/modules/auth/agent-token.model.ts).
  // Now, not on the seed's clock (30 days back): the record must not have expired.
  const issued = new Date();
  const agentToken = {
    _id: new ObjectId(),
    name: 'bench-risk-agent',
    issued_by: admin._id,
    // An admin's token on every wallet: the platform's own agent service.
    scope: 'all_wallets',
    issuer_role: 'admin',
    created_at: issued,
    expires_at: new Date(issued.getTime() + 86_400_000),
    revoked_at: null,
    changed_at: issued,
  };
  await db.collection('agent_tokens').insertOne(agentToken);

  const counts = {
    definitions: await db.collection('wallets').countDocuments(),
    users: await db.collection('users').countDocuments(),
    credentials: await db.collection('credentials').countDocuments(),
    wallets: await db.collection('user_wallets').countDocuments(),
  };
  check(
    counts.wallets === SETTINGS.totalWallets && counts.credentials === SETTINGS.totalWallets,
    `seeded ${JSON.stringify(counts)}`,
  );
  return {
    counts,
    seconds: Math.round((performance.now() - started) / 100) / 10,
    admin,
    listUsers,
    heavyCredentialId: heavyCredential._id.toHexString(),
    agentToken,
    writePool: writePool.map((id) => id.toHexString()),
    oneWalletUsers,
    changedSince,
  };
}
