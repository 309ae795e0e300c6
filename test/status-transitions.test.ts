import { randomBytes } from 'node:crypto';
import { expect } from '@jest/globals';
import mongoose, { Types } from 'mongoose';
import {
  AiPauseWalletDocument,
  AiResumeWalletDocument,
  AuditTrailDocument,
  CreateCredentialDocument,
  CreateUserWalletDocument,
  CreateWalletDefinitionDocument,
  DeleteUserWalletDocument,
  PauseUserWalletDocument,
  ResumeUserWalletDocument,
  TestCredentialConnectionDocument,
  UpdateAiManagedStateDocument,
  UpdateCredentialDocument,
  UpdateUserWalletDocument,
  UpdateWalletDefinitionDocument,
} from './generated/graphql';
import { codes, startTestApp, type GqlResult, type TestApp } from './helpers/app';
import {
  adminToken,
  agentToken,
  definitionInput,
  limits,
  registerUser,
  type TestUser,
} from './helpers/factories';
import type { StoredWallet, StoredWalletEvent } from './helpers/stored';
import {
  startBinanceSimulator,
  type BinanceAccount,
  type BinanceSimulatorOptions,
  type Simulator,
} from './simulators/binance.simulator';

/**
 * The wallet status table (docs: "Wallet status"): who may move a wallet from which status to
 * which, and on what condition. One row per cell, each on a wallet of its own, over HTTP against
 * the real server and a Binance simulator: an allowed move lands and leaves its STATUS_CHANGED
 * event by the right actor; a refused one answers its code and changes nothing.
 */

const LIMIT = 1000;
/** Every wallet starts with this risk: within LIMIT, over LOWERED. */
const RISK = 600;
const OVER = 1500;
const LOWERED = 500;
const AGENT = 'status-agent';
const REFUSED = /^the exchange refused this wallet's credential: /;

type Status = 'ACTIVE' | 'AI_PAUSED' | 'USER_PAUSED';

/** Where a row's wallet starts, and how it got there. */
const FROM = {
  ACTIVE: 'ACTIVE',
  'ACTIVE over the limit (resumed by its user)': 'ACTIVE',
  'AI_PAUSED by an agent': 'AI_PAUSED',
  'AI_PAUSED by an agent write over the limit': 'AI_PAUSED',
  'AI_PAUSED by a limit lowered under the risk': 'AI_PAUSED',
  'AI_PAUSED on a refused credential': 'AI_PAUSED',
  USER_PAUSED: 'USER_PAUSED',
  'USER_PAUSED, then its limit lowered under the risk': 'USER_PAUSED',
} as const satisfies Record<string, Status>;
type From = keyof typeof FROM;

/** What else holds when the row's move is tried. */
type When =
  | 'the exchange refused the credential'
  | 'the credential is inactive'
  | 'the exchange is inactive'
  | 'another wallet on the credential is live';

type Who = 'user' | 'agent' | 'service' | 'another user';

type Does =
  | 'pauseUserWallet'
  | 'resumeUserWallet'
  | 'deleteUserWallet'
  | 'updateUserWallet (maxTotalRisk under the risk)'
  | 'updateCredential (isActive: false)'
  | 'aiPauseWallet'
  | 'aiResumeWallet'
  | 'updateAiManagedState (currentRisk over the limit)'
  | 'updateAiManagedState (riskScore only)'
  | 'a connection test the exchange refuses';

type Then =
  | { to: Status; reason: string | RegExp | null }
  | { to: 'deleted' }
  | { stays: true }
  | { refused: 'CONFLICT' | 'FORBIDDEN' | 'BAD_USER_INPUT'; message?: RegExp; field?: string };

interface Row {
  who: Who;
  does: Does;
  from: From;
  when?: When;
  then: Then;
}

const to = (status: Status, reason: string | RegExp | null): Then => ({ to: status, reason });
const stays: Then = { stays: true };
const deleted: Then = { to: 'deleted' };
const refused = (
  code: 'CONFLICT' | 'FORBIDDEN' | 'BAD_USER_INPUT',
  message?: RegExp,
  field?: string,
): Then => ({ refused: code, message, field });

const OVER_LIMIT = /^the wallet's currentRisk is over its maxTotalRisk/;
const TEST_AGAIN = /test the credential again first/;
const BY_USER = 'paused by the user';
const DEACTIVATED = 'the credential was deactivated';
const RISK_EXCEEDED = /^risk limit exceeded: currentRisk \d+ > maxTotalRisk \d+$/;

const TABLE: Row[] = [
  // The user, on their own wallet.
  { who: 'user', does: 'pauseUserWallet', from: 'ACTIVE', then: to('USER_PAUSED', BY_USER) },
  {
    who: 'user',
    does: 'pauseUserWallet',
    from: 'AI_PAUSED by an agent',
    then: to('USER_PAUSED', BY_USER),
  },
  {
    who: 'user',
    does: 'pauseUserWallet',
    from: 'USER_PAUSED',
    then: refused('CONFLICT', /already USER_PAUSED/),
  },
  { who: 'user', does: 'resumeUserWallet', from: 'USER_PAUSED', then: to('ACTIVE', null) },
  {
    who: 'user',
    does: 'resumeUserWallet',
    from: 'USER_PAUSED, then its limit lowered under the risk',
    then: to('ACTIVE', null),
  },
  {
    who: 'user',
    does: 'resumeUserWallet',
    from: 'AI_PAUSED by an agent',
    then: to('ACTIVE', null),
  },
  {
    who: 'user',
    does: 'resumeUserWallet',
    from: 'AI_PAUSED by an agent write over the limit',
    then: to('ACTIVE', null),
  },
  {
    who: 'user',
    does: 'resumeUserWallet',
    from: 'AI_PAUSED by a limit lowered under the risk',
    then: to('ACTIVE', null),
  },
  {
    who: 'user',
    does: 'resumeUserWallet',
    from: 'ACTIVE',
    then: refused('CONFLICT', /already ACTIVE/),
  },
  {
    who: 'user',
    does: 'resumeUserWallet',
    from: 'AI_PAUSED on a refused credential',
    then: refused('CONFLICT', TEST_AGAIN),
  },
  {
    who: 'user',
    does: 'resumeUserWallet',
    from: 'USER_PAUSED',
    when: 'the exchange refused the credential',
    then: refused('CONFLICT', TEST_AGAIN),
  },
  {
    who: 'user',
    does: 'resumeUserWallet',
    from: 'USER_PAUSED',
    when: 'the credential is inactive',
    then: refused('BAD_USER_INPUT', /credential is not active/, 'credentialId'),
  },
  {
    who: 'user',
    does: 'resumeUserWallet',
    from: 'USER_PAUSED',
    when: 'the exchange is inactive',
    then: refused('BAD_USER_INPUT', /is not active/, 'credentialId'),
  },
  {
    who: 'user',
    does: 'resumeUserWallet',
    from: 'USER_PAUSED',
    when: 'another wallet on the credential is live',
    then: refused('CONFLICT', /another live wallet already uses this credential/),
  },
  {
    who: 'user',
    does: 'updateUserWallet (maxTotalRisk under the risk)',
    from: 'ACTIVE',
    then: to('AI_PAUSED', RISK_EXCEEDED),
  },
  {
    who: 'user',
    does: 'updateUserWallet (maxTotalRisk under the risk)',
    from: 'AI_PAUSED by an agent',
    then: stays,
  },
  {
    who: 'user',
    does: 'updateUserWallet (maxTotalRisk under the risk)',
    from: 'USER_PAUSED',
    then: stays,
  },
  {
    who: 'user',
    does: 'updateCredential (isActive: false)',
    from: 'ACTIVE',
    then: to('USER_PAUSED', DEACTIVATED),
  },
  {
    who: 'user',
    does: 'updateCredential (isActive: false)',
    from: 'AI_PAUSED by an agent',
    then: to('USER_PAUSED', DEACTIVATED),
  },
  { who: 'user', does: 'updateCredential (isActive: false)', from: 'USER_PAUSED', then: stays },
  { who: 'user', does: 'deleteUserWallet', from: 'ACTIVE', then: deleted },
  { who: 'user', does: 'deleteUserWallet', from: 'AI_PAUSED by an agent', then: deleted },
  { who: 'user', does: 'deleteUserWallet', from: 'USER_PAUSED', then: deleted },

  // Another user (an admin alike) on a wallet not theirs.
  { who: 'another user', does: 'pauseUserWallet', from: 'ACTIVE', then: refused('FORBIDDEN') },
  {
    who: 'another user',
    does: 'resumeUserWallet',
    from: 'USER_PAUSED',
    then: refused('FORBIDDEN'),
  },
  {
    who: 'another user',
    does: 'resumeUserWallet',
    from: 'AI_PAUSED by an agent',
    then: refused('FORBIDDEN'),
  },
  { who: 'another user', does: 'deleteUserWallet', from: 'ACTIVE', then: refused('FORBIDDEN') },

  // Agents, on any user's wallet.
  { who: 'agent', does: 'aiPauseWallet', from: 'ACTIVE', then: to('AI_PAUSED', 'news') },
  {
    who: 'agent',
    does: 'aiPauseWallet',
    from: 'AI_PAUSED by an agent',
    then: refused('CONFLICT', /already AI_PAUSED/),
  },
  {
    who: 'agent',
    does: 'aiPauseWallet',
    from: 'USER_PAUSED',
    then: refused('CONFLICT', /the user paused this wallet/),
  },
  {
    who: 'agent',
    does: 'aiResumeWallet',
    from: 'AI_PAUSED by an agent',
    then: to('ACTIVE', null),
  },
  {
    who: 'agent',
    does: 'aiResumeWallet',
    from: 'AI_PAUSED by an agent write over the limit',
    then: refused('CONFLICT', OVER_LIMIT),
  },
  {
    who: 'agent',
    does: 'aiResumeWallet',
    from: 'AI_PAUSED by a limit lowered under the risk',
    then: refused('CONFLICT', OVER_LIMIT),
  },
  {
    who: 'agent',
    does: 'aiResumeWallet',
    from: 'AI_PAUSED on a refused credential',
    then: refused('CONFLICT', TEST_AGAIN),
  },
  {
    who: 'agent',
    does: 'aiResumeWallet',
    from: 'ACTIVE',
    then: refused('CONFLICT', /already ACTIVE/),
  },
  {
    who: 'agent',
    does: 'aiResumeWallet',
    from: 'USER_PAUSED',
    then: refused('CONFLICT', /the user paused this wallet/),
  },
  {
    who: 'agent',
    does: 'updateAiManagedState (currentRisk over the limit)',
    from: 'ACTIVE',
    then: to('AI_PAUSED', `risk limit exceeded: currentRisk ${OVER} > maxTotalRisk ${LIMIT}`),
  },
  {
    who: 'agent',
    does: 'updateAiManagedState (riskScore only)',
    from: 'ACTIVE over the limit (resumed by its user)',
    then: to('AI_PAUSED', `risk limit exceeded: currentRisk ${OVER} > maxTotalRisk ${LIMIT}`),
  },
  {
    who: 'agent',
    does: 'updateAiManagedState (currentRisk over the limit)',
    from: 'AI_PAUSED by an agent',
    then: stays,
  },
  {
    who: 'agent',
    does: 'updateAiManagedState (currentRisk over the limit)',
    from: 'USER_PAUSED',
    then: stays,
  },
  { who: 'agent', does: 'pauseUserWallet', from: 'ACTIVE', then: refused('FORBIDDEN') },
  { who: 'agent', does: 'resumeUserWallet', from: 'USER_PAUSED', then: refused('FORBIDDEN') },
  { who: 'agent', does: 'deleteUserWallet', from: 'ACTIVE', then: refused('FORBIDDEN') },

  // The service itself.
  {
    who: 'service',
    does: 'a connection test the exchange refuses',
    from: 'ACTIVE',
    then: to('AI_PAUSED', REFUSED),
  },
  {
    who: 'service',
    does: 'a connection test the exchange refuses',
    from: 'AI_PAUSED by an agent',
    then: to('AI_PAUSED', REFUSED),
  },
  {
    who: 'service',
    does: 'a connection test the exchange refuses',
    from: 'AI_PAUSED on a refused credential',
    then: stays,
  },
  {
    who: 'service',
    does: 'a connection test the exchange refuses',
    from: 'USER_PAUSED',
    then: stays,
  },
];

let t: TestApp;
let admin: string;
let agent: string;
let mallory: TestUser;
let simulator: Simulator;
const exchange: BinanceSimulatorOptions = { accounts: [] };
let sharedSlug: string;

type Stored = StoredWallet & { pause_reason: string | null; live_key: Types.ObjectId };
const wallets = () => mongoose.connection.db!.collection<Stored>('user_wallets');
const trail = () => mongoose.connection.db!.collection<StoredWalletEvent>('user_wallet_events');

beforeAll(async () => {
  t = await startTestApp({ MAX_CREDENTIALS_PER_USER: '10', MAX_WALLETS_PER_USER: '10' });
  admin = await adminToken(t);
  agent = await agentToken(t, AGENT);
  mallory = await registerUser(t);
  simulator = await startBinanceSimulator(exchange);
  sharedSlug = await binanceAt(simulator.url);
});
afterAll(async () => {
  await t.close();
  await simulator.close();
});

function must<T>(result: GqlResult<T>, what: string): T {
  if (!result.data || result.errors)
    throw new Error(`${what} failed: ${JSON.stringify(result.errors)}`);
  return result.data;
}

/** A catalog entry tested as Binance, at the simulator. */
async function binanceAt(url: string): Promise<string> {
  const slug = `st-${randomBytes(3).toString('hex')}`;
  must(
    await t.gql(
      CreateWalletDefinitionDocument,
      {
        input: definitionInput({
          name: `Binance ${slug}`,
          slug,
          ccxtId: 'binance',
          apiConfig: { baseUrl: url, testnetUrl: url, rateLimit: 1200 },
        }),
      },
      admin,
    ),
    'createWalletDefinition',
  );
  return slug;
}

interface Wallet {
  id: string;
  owner: TestUser;
  credentialId: string;
  account: BinanceAccount;
  slug: string;
}

/**
 * The exchange stops knowing the key, and a connection test finds it: what the service's own
 * re-test does, started by the user here so that it happens now. The test's once-per-10-s slot is
 * given back first, as a row may need two tests.
 */
async function refuseKey(w: Wallet) {
  exchange.accounts = exchange.accounts.filter((a) => a !== w.account);
  await mongoose.connection
    .db!.collection('credentials')
    .updateOne({ _id: new Types.ObjectId(w.credentialId) }, { $set: { last_test_at: null } });
  return t.gql(TestCredentialConnectionDocument, { id: w.credentialId }, w.owner.token);
}

const riskWrite = (id: string, currentRisk: number) =>
  t.gql(UpdateAiManagedStateDocument, { walletId: id, input: { currentRisk } }, agent);
const lowerLimit = (w: Wallet, token = w.owner.token) =>
  t.gql(
    UpdateUserWalletDocument,
    { id: w.id, input: { userLimits: limits({ maxTotalRisk: LOWERED }) } },
    token,
  );

/** A wallet of a new user's, on a key of its own that the exchange knows, brought to `from`. */
async function walletIn(from: From, when: When | undefined): Promise<Wallet> {
  const owner = await registerUser(t);
  const slug = when === 'the exchange is inactive' ? await binanceAt(simulator.url) : sharedSlug;
  const account = {
    apiKey: randomBytes(24).toString('hex'),
    secret: randomBytes(32).toString('hex'),
  };
  exchange.accounts.push(account);
  const definitionId = (
    await t.raw<{ walletDefinition: { id: string } }>(
      'query ($slug: String!) { walletDefinition(slug: $slug) { id } }',
      { slug },
    )
  ).data!.walletDefinition.id;
  const credentialId = must(
    await t.gql(
      CreateCredentialDocument,
      {
        input: {
          walletId: definitionId,
          name: 'Key',
          values: [
            { key: 'api_key', value: account.apiKey },
            { key: 'api_secret', value: account.secret },
          ],
        },
      },
      owner.token,
    ),
    'createCredential',
  ).createCredential.id;
  // Tested first: the service's own re-test of a live wallet's key is then hours away, and can't
  // cross this row's own refusal.
  const tested = must(
    await t.gql(TestCredentialConnectionDocument, { id: credentialId }, owner.token),
    'testCredentialConnection',
  );
  expect(tested.testCredentialConnection.ok).toBe(true);
  const id = must(
    await t.gql(
      CreateUserWalletDocument,
      { input: { credentialId, name: 'Trading', userLimits: limits({ maxTotalRisk: LIMIT }) } },
      owner.token,
    ),
    'createUserWallet',
  ).createUserWallet.id;
  const w: Wallet = { id, owner, credentialId, account, slug };
  must(await riskWrite(id, RISK), 'updateAiManagedState');

  const pause = () => t.gql(PauseUserWalletDocument, { id }, owner.token);
  switch (from) {
    case 'ACTIVE':
      break;
    case 'ACTIVE over the limit (resumed by its user)':
      must(await riskWrite(id, OVER), 'updateAiManagedState');
      must(await t.gql(ResumeUserWalletDocument, { id }, owner.token), 'resumeUserWallet');
      break;
    case 'AI_PAUSED by an agent':
      must(await t.gql(AiPauseWalletDocument, { walletId: id, reason: 'news' }, agent), 'pause');
      break;
    case 'AI_PAUSED by an agent write over the limit':
      must(await riskWrite(id, OVER), 'updateAiManagedState');
      break;
    case 'AI_PAUSED by a limit lowered under the risk':
      must(await lowerLimit(w), 'updateUserWallet');
      break;
    case 'AI_PAUSED on a refused credential':
      must(await refuseKey(w), 'testCredentialConnection');
      break;
    case 'USER_PAUSED':
      must(await pause(), 'pauseUserWallet');
      break;
    case 'USER_PAUSED, then its limit lowered under the risk':
      must(await pause(), 'pauseUserWallet');
      must(await lowerLimit(w), 'updateUserWallet');
      break;
  }

  switch (when) {
    case undefined:
      break;
    case 'the exchange refused the credential':
      expect(must(await refuseKey(w), 'testCredentialConnection').testCredentialConnection.ok).toBe(
        false,
      );
      break;
    case 'the credential is inactive':
      must(
        await t.gql(
          UpdateCredentialDocument,
          { id: credentialId, input: { isActive: false } },
          owner.token,
        ),
        'updateCredential',
      );
      break;
    case 'the exchange is inactive':
      must(
        await t.gql(UpdateWalletDefinitionDocument, { slug, input: { isActive: false } }, admin),
        'updateWalletDefinition',
      );
      break;
    case 'another wallet on the credential is live':
      must(
        await t.gql(
          CreateUserWalletDocument,
          { input: { credentialId, name: 'Another', userLimits: limits() } },
          owner.token,
        ),
        'createUserWallet',
      );
      break;
  }
  return w;
}

function act(row: Row, w: Wallet): Promise<GqlResult<unknown>> {
  const token = { user: w.owner.token, 'another user': mallory.token, agent, service: '' }[row.who];
  switch (row.does) {
    case 'pauseUserWallet':
      return t.gql(PauseUserWalletDocument, { id: w.id }, token);
    case 'resumeUserWallet':
      return t.gql(ResumeUserWalletDocument, { id: w.id }, token);
    case 'deleteUserWallet':
      return t.gql(DeleteUserWalletDocument, { id: w.id }, token);
    case 'updateUserWallet (maxTotalRisk under the risk)':
      return lowerLimit(w, token);
    case 'updateCredential (isActive: false)':
      return t.gql(
        UpdateCredentialDocument,
        { id: w.credentialId, input: { isActive: false } },
        token,
      );
    case 'aiPauseWallet':
      return t.gql(AiPauseWalletDocument, { walletId: w.id, reason: 'news' }, token);
    case 'aiResumeWallet':
      return t.gql(AiResumeWalletDocument, { walletId: w.id }, token);
    case 'updateAiManagedState (currentRisk over the limit)':
      return riskWrite(w.id, OVER);
    case 'updateAiManagedState (riskScore only)':
      return t.gql(
        UpdateAiManagedStateDocument,
        { walletId: w.id, input: { riskScore: 70 } },
        token,
      );
    case 'a connection test the exchange refuses':
      return refuseKey(w);
  }
}

/** What a refused move must leave exactly as it was. */
async function state(id: string) {
  const doc = await wallets().findOne(
    { _id: new Types.ObjectId(id) },
    {
      projection: {
        status: 1,
        pause_reason: 1,
        version: 1,
        user_limits: 1,
        ai_managed_state: 1,
        live_key: 1,
      },
    },
  );
  return doc;
}

async function statusEvents(w: Wallet) {
  const result = await t.gql(
    AuditTrailDocument,
    { id: w.id, first: 100, kinds: ['STATUS_CHANGED'] },
    w.owner.token,
  );
  return must(result, 'auditTrail').userWallet.auditTrail.edges.map((e) => e.node);
}

function actorOf(row: Row, w: Wallet) {
  if (row.who === 'agent') return { actor: AGENT, actorRole: 'AGENT' };
  if (row.who === 'service') return { actor: 'wallet-service', actorRole: 'SYSTEM' };
  return { actor: w.owner.id, actorRole: 'USER' };
}

const text = (reason: string | RegExp | null) =>
  reason instanceof RegExp ? expect.stringMatching(reason) : reason;

const name = (row: Row) =>
  `${row.who}: ${row.does} on ${row.from}${row.when ? `, when ${row.when}` : ''} -> ${
    'refused' in row.then
      ? `refused, ${row.then.refused}`
      : 'stays' in row.then
        ? 'stays as it is'
        : row.then.to
  }`;

describe('wallet status transitions', () => {
  it.each(TABLE.map((row) => [name(row), row] as const))('%s', async (_name, row) => {
    const w = await walletIn(row.from, row.when);
    const before = await state(w.id);
    expect(before!.status).toBe(FROM[row.from].toLowerCase());
    const eventsBefore = await statusEvents(w);

    const result = await act(row, w);
    const then = row.then;

    if ('refused' in then) {
      expect(codes(result)).toEqual([then.refused]);
      if (then.message) expect(result.errors![0].message).toMatch(then.message);
      if (then.field) expect(result.errors![0].extensions?.field).toBe(then.field);
      expect(await state(w.id)).toEqual(before);
      expect(await statusEvents(w)).toEqual(eventsBefore);
      return;
    }

    expect(result.errors).toBeUndefined();
    if ('stays' in then) {
      const after = await state(w.id);
      expect({ status: after!.status, pauseReason: after!.pause_reason }).toEqual({
        status: before!.status,
        pauseReason: before!.pause_reason,
      });
      expect(await statusEvents(w)).toEqual(eventsBefore);
      return;
    }

    if (then.to === 'deleted') {
      expect(await state(w.id)).toBeNull();
      // The wallet goes; its trail stays.
      const kept = await trail()
        .find({ wallet_id: new Types.ObjectId(w.id) })
        .toArray();
      expect(kept.map((e) => e._id.toHexString())).toEqual(
        expect.arrayContaining(eventsBefore.map((e) => e.id)),
      );
      return;
    }

    const after = await state(w.id);
    expect(after!.status).toBe(then.to.toLowerCase());
    expect(after!.pause_reason).toEqual(text(then.reason));
    const events = await statusEvents(w);
    expect(events).toHaveLength(eventsBefore.length + 1);
    expect(events[0]).toMatchObject({
      ...actorOf(row, w),
      before: { status: FROM[row.from], pauseReason: before!.pause_reason },
      after: { status: then.to, pauseReason: text(then.reason) },
    });
  });
});

describe('an agent resume racing a change of the risk or the limit', () => {
  const ROUNDS = 15;
  // Each round: a wallet paused within its limit, resumed by an agent while the risk goes over
  // the limit (an agent's write) or the limit under the risk (its user's update). Whichever lands
  // first, the wallet must not end ACTIVE over its limit. The resume starts 0 to 4 ms after the
  // change, so that the rounds cover every interleaving of the two requests' reads and writes.
  it.each([
    ['an agent writes currentRisk over the limit', (w: Wallet) => riskWrite(w.id, OVER)],
    ['the user lowers maxTotalRisk under the risk', (w: Wallet) => lowerLimit(w)],
  ])('never resumes over the limit when %s meanwhile', async (_what, change) => {
    for (let round = 0; round < ROUNDS; round++) {
      const w = await walletIn('AI_PAUSED by an agent', undefined);
      const changing = change(w);
      await new Promise((resolve) => setTimeout(resolve, round % 5));
      const [resumed, changed] = await Promise.all([
        t.gql(AiResumeWalletDocument, { walletId: w.id }, agent),
        changing,
      ]);
      expect(changed.errors).toBeUndefined();
      const doc = (await wallets().findOne({ _id: new Types.ObjectId(w.id) }))!;
      const over = doc.ai_managed_state.current_risk > doc.user_limits.max_total_risk;
      expect({ status: doc.status, over }).not.toEqual({ status: 'active', over: true });
      if (resumed.errors) {
        expect(codes(resumed)).toEqual(['CONFLICT']);
        expect(resumed.errors[0].message).toMatch(OVER_LIMIT);
      }
    }
  });

  it('resumes when a write within the limit lands meanwhile: checked again, not refused', async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const w = await walletIn('AI_PAUSED by an agent', undefined);
      const writing = riskWrite(w.id, RISK + 1 + round);
      await new Promise((resolve) => setTimeout(resolve, round % 5));
      const [resumed, written] = await Promise.all([
        t.gql(AiResumeWalletDocument, { walletId: w.id }, agent),
        writing,
      ]);
      expect(written.errors).toBeUndefined();
      expect(resumed.errors).toBeUndefined();
      expect((await state(w.id))!.status).toBe('active');
    }
  });
});
