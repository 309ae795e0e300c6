import { expect } from '@jest/globals';
import { Types } from 'mongoose';
import { CredentialBalanceModel } from '../src/modules/credentials/credential-balance.model';
import { UserWalletModel } from '../src/modules/wallets/user-wallet.model';
import { commandsFor } from './helpers/commands';
import { codes, startTestApp, type GqlResult, type TestApp } from './helpers/app';
import {
  agentToken,
  binanceCredential,
  registerUser,
  userWallet,
  type TestUser,
} from './helpers/factories';
import { subscribe, until } from './helpers/live';

/**
 * The attacker's requests of the third security round: lists multiplied across parents and
 * aliases, their page sizes in variables. The cost is computed with the variables, before anything
 * runs.
 */

const WALLET_LISTS = `events(first: $n) { id kind actor actorRole before after at }
  auditTrail(first: $n) { edges { cursor node { id kind actor before after at } } }
  credential { balanceHistory(first: $m) { at balances { asset free used total } } }`;

const aliases = (count: number, field: string) =>
  Array.from({ length: count }, (_, i) => `x${i}: ${field}`).join('\n');

const ATTACKER_AS_USER = (count: number) =>
  `query ($n: Int, $m: Int) { ${aliases(count, `userWallets { id ${WALLET_LISTS} }`)} }`;

const ATTACKER_AS_AGENT = (count: number) =>
  `query ($n: Int, $m: Int, $p: Int) { ${aliases(
    count,
    `managedWallets(first: $p) { edges { node { id ${WALLET_LISTS} } } }`,
  )} }`;

/** Refused as a whole before execution: BAD_USER_INPUT with the cost and the limit, no data. */
function expectRefusedByCost(result: GqlResult<unknown>, limit = 600_000): void {
  expect(result.status).toBe(400);
  expect(result.data).toBeUndefined();
  expect(codes(result)).toEqual(['BAD_USER_INPUT']);
  const extensions = result.errors![0].extensions as { cost: number; limit: number };
  expect(extensions.limit).toBe(limit);
  expect(extensions.cost).toBeGreaterThan(limit);
  expect(result.errors![0].message).toMatch(/cost of \d+ is over the limit of \d+/);
}

// One app at a time: each describe starts its own (mongoose has one connection per process).
describe('the request cost, with its variables', () => {
  let t: TestApp;
  let user: TestUser;
  let agent: string;
  let walletId: string;
  let credentialId: string;
  beforeAll(async () => {
    t = await startTestApp();
    user = await registerUser(t);
    agent = await agentToken(t);
    credentialId = await binanceCredential(t, user);
    walletId = (await userWallet(t, user, credentialId)).id;
  });
  afterAll(() => t.close());

  it.each([1, 3, 5])(
    "refuses the attacker's %i-alias request as a user before anything runs",
    async (count) => {
      let result!: GqlResult<unknown>;
      const started = Date.now();
      const commands = await commandsFor(async () => {
        result = await t.raw(ATTACKER_AS_USER(count), { n: 100, m: 500 }, user.token);
      });
      expect(Date.now() - started).toBeLessThan(1_000);
      expectRefusedByCost(result);
      // Not one resolver ran: the token's check read the user, and nothing else was read.
      expect(commands).toEqual(['find users']);
    },
  );

  it.each([1, 3])(
    "refuses the attacker's %i-alias request as an agent before anything runs",
    async (count) => {
      let result!: GqlResult<unknown>;
      const commands = await commandsFor(async () => {
        result = await t.raw(ATTACKER_AS_AGENT(count), { n: 100, m: 500, p: 500 }, agent);
      });
      expectRefusedByCost(result);
      expect(commands).toEqual([]);
    },
  );

  it('reads only the variables sent: a "__proto__" key counts for nothing', async () => {
    // Parsed from JSON, "__proto__" is an own key; copied with Object.assign it would become the
    // prototype every variable left out is read from, pages of 0 that the execution never sees.
    const variables = JSON.parse('{"__proto__": {"n": 0, "m": 0, "p": 0}}') as Record<
      string,
      unknown
    >;
    let result!: GqlResult<unknown>;
    const commands = await commandsFor(async () => {
      result = await t.raw(ATTACKER_AS_AGENT(1), variables, agent);
    });
    expectRefusedByCost(result);
    expect(commands).toEqual([]);
  });

  it('counts literal page sizes as before, and the same with variables', async () => {
    const literal = await t.raw(
      '{ managedWallets(first: 500) { edges { node { id events(first: 100) { id kind actor actorRole before after at } } } } }',
      undefined,
      agent,
    );
    expectRefusedByCost(literal);
    const variables = await t.raw(
      'query ($p: Int, $n: Int) { managedWallets(first: $p) { edges { node { id events(first: $n) { id kind actor actorRole before after at } } } } }',
      { p: 500, n: 100 },
      agent,
    );
    expectRefusedByCost(variables);
    expect(variables.errors![0].extensions).toEqual(literal.errors![0].extensions);
    // A variable left out takes its default, and the list its own default page.
    const defaults = await t.raw(
      'query ($p: Int = 500, $n: Int) { managedWallets(first: $p) { edges { node { id events(first: $n) { id kind actor actorRole before after at } } } } }',
      {},
      agent,
    );
    expect(codes(defaults)).toEqual([]);
  });

  it("costs the same document anew with each request's variables, and one without the same each time", async () => {
    const query =
      'query ($p: Int, $n: Int) { managedWallets(first: $p) { edges { node { id events(first: $n) { id kind actor actorRole before after at } } } } }';
    const small = { p: 2, n: 2 };
    expect(codes(await t.raw(query, small, agent))).toEqual([]);
    expectRefusedByCost(await t.raw(query, { p: 500, n: 100 }, agent));
    expect(codes(await t.raw(query, small, agent))).toEqual([]);

    const over =
      '{ managedWallets(first: 500) { edges { node { id events(first: 100) { id kind actor actorRole before after at } } } } }';
    const refusals = [await t.raw(over, undefined, agent), await t.raw(over, undefined, agent)];
    for (const refused of refusals) expectRefusedByCost(refused);
    expect(refusals[1].errors![0].extensions).toEqual(refusals[0].errors![0].extensions);
    const under = '{ managedWallets(first: 2) { edges { node { id } } } }';
    for (let i = 0; i < 2; i++) expect(codes(await t.raw(under, undefined, agent))).toEqual([]);
  });

  it('runs nothing of a refused mutation', async () => {
    const heavy = `credential { balanceHistory(first: $m) { at balances { asset free used total } } }`;
    const result = await t.raw(
      `mutation ($id: ObjectID!, $m: Int) { ${aliases(3, `pauseUserWallet(id: $id) { id status ${heavy} }`)} }`,
      { id: walletId, m: 500 },
      user.token,
    );
    expectRefusedByCost(result);
    const stored = await UserWalletModel.findById(walletId).lean();
    expect(stored!.status).toBe('active');
  });

  it('lets the largest page of a single field through, on one parent', async () => {
    const result = await t.raw(
      'query ($id: ObjectID!, $m: Int) { credential(id: $id) { id name balanceHistory(first: $m) { at balances { asset free used total } } } }',
      { id: credentialId, m: 500 },
      user.token,
    );
    expect(result.errors).toBeUndefined();
    // Twice over, it no longer fits.
    const twice = await t.raw(
      'query ($id: ObjectID!, $m: Int) { a: credential(id: $id) { balanceHistory(first: $m) { at balances { asset free used total } } } b: credential(id: $id) { balanceHistory(first: $m) { at balances { asset free used total } } } }',
      { id: credentialId, m: 500 },
      user.token,
    );
    expectRefusedByCost(twice);
  });

  it('answers the largest allowed request whole, its lists let through in slices', async () => {
    const id = new Types.ObjectId(credentialId);
    const base = Date.now();
    await CredentialBalanceModel.insertMany(
      Array.from({ length: 500 }, (_, i) => ({
        credential_id: id,
        at: new Date(base - i * 60_000),
        balances: Array.from({ length: 100 }, (_, a) => ({
          asset: `A${a}`,
          free: i + a,
          used: 0,
          total: i + a,
        })),
      })),
    );
    try {
      const result = await t.raw<{
        credential: { balanceHistory: Array<{ at: string; balances: Array<{ free: number }> }> };
      }>(
        'query ($id: ObjectID!) { credential(id: $id) { balanceHistory(first: 500) { at balances { asset free used total } } } }',
        { id: credentialId },
        user.token,
      );
      expect(result.errors).toBeUndefined();
      const history = result.data!.credential.balanceHistory;
      expect(history).toHaveLength(500);
      // Newest first, each whole and in its own order.
      history.forEach((snapshot, i) => {
        expect(snapshot.balances.map((b) => b.free)).toEqual(
          Array.from({ length: 100 }, (_, a) => i + a),
        );
      });
    } finally {
      await CredentialBalanceModel.deleteMany({ credential_id: id });
    }
  });

  it('counts a list of no argument at the most it can return (the per-user cap)', async () => {
    // What one wallet may ask for, times the cap of 50 wallets.
    const history =
      'credential { balanceHistory(first: $m) { at balances { asset free used total } } }';
    const result = await t.raw(
      `query ($m: Int) { userWallets { ${history} } }`,
      { m: 500 },
      user.token,
    );
    expectRefusedByCost(result);
    const one = await t.raw(
      `query ($id: ObjectID!, $m: Int) { userWallet(id: $id) { ${history} } }`,
      { id: walletId, m: 500 },
      user.token,
    );
    expect(one.errors).toBeUndefined();
  });
});

/**
 * A credential and a wallet made with the smallest selections, for an app whose cost limit is too
 * low for the factories' (a definition with its 500 assets costs more than 100).
 */
async function smallWallet(
  app: TestApp,
  owner: TestUser,
): Promise<{ credential: string; wallet: string }> {
  const binance = await app.raw<{ walletDefinition: { id: string } }>(
    '{ walletDefinition(slug: "binance") { id } }',
  );
  const credential = await app.raw<{ createCredential: { id: string } }>(
    'mutation ($input: CreateCredentialInput!) { createCredential(input: $input) { id } }',
    {
      input: {
        walletId: binance.data!.walletDefinition.id,
        name: 'Binance',
        values: [
          { key: 'api_key', value: 'k'.repeat(24) },
          { key: 'api_secret', value: 's'.repeat(32) },
        ],
      },
    },
    owner.token,
  );
  const wallet = await app.raw<{ createUserWallet: { id: string } }>(
    'mutation ($input: CreateUserWalletInput!) { createUserWallet(input: $input) { id } }',
    {
      input: {
        credentialId: credential.data!.createCredential.id,
        name: 'Trading',
        userLimits: { maxTotalRisk: 1000, tradingMode: 'MODERATE' },
      },
    },
    owner.token,
  );
  return {
    credential: credential.data!.createCredential.id,
    wallet: wallet.data!.createUserWallet.id,
  };
}

describe('the cost over WebSocket', () => {
  let small: TestApp;
  beforeAll(async () => {
    // An event with every field costs 29; a subscription has one root field, and with fourteen
    // aliases of `before` it costs 169.
    small = await startTestApp({ MAX_REQUEST_COST: '100' });
  });
  afterAll(() => small.close());

  const EVENT = 'id walletId kind actor actorRole before after at version';
  const BEFORES = Array.from({ length: 14 }, (_, i) => `b${i}: before`).join(' ');

  it('refuses a subscription over the limit, and starts nothing', async () => {
    const owner = await registerUser(small);
    const { wallet } = await smallWallet(small, owner);
    const subscriber = subscribe(
      small.url,
      owner.token,
      `subscription ($w: ObjectID) { myWalletEvents(walletId: $w) { ${EVENT} ${BEFORES} } }`,
      { w: wallet },
    );
    await subscriber.completed;
    expect(subscriber.errors).toEqual([
      expect.objectContaining({
        extensions: expect.objectContaining({ code: 'BAD_USER_INPUT', cost: 169, limit: 100 }),
      }),
    ]);
    await small.raw(
      'mutation ($id: ObjectID!) { pauseUserWallet(id: $id) { status } }',
      { id: wallet },
      owner.token,
    );
    expect(subscriber.events).toEqual([]);
    await subscriber.dispose();
  });

  it('starts one under the limit', async () => {
    const owner = await registerUser(small);
    const { wallet } = await smallWallet(small, owner);
    const subscriber = subscribe(
      small.url,
      owner.token,
      `subscription ($w: ObjectID) { myWalletEvents(walletId: $w) { ${EVENT} } }`,
      { w: wallet },
    );
    await subscriber.connected;
    const paused = await small.raw(
      'mutation ($id: ObjectID!) { pauseUserWallet(id: $id) { status } }',
      { id: wallet },
      owner.token,
    );
    expect(paused.errors).toBeUndefined();
    await until('the event', () => subscriber.events.some((e) => e.kind === 'STATUS_CHANGED'));
    expect(subscriber.errors).toEqual([]);
    await subscriber.dispose();
  });

  it("refuses the attacker's shapes over WebSocket too, as a user and as an agent", async () => {
    const owner = await registerUser(small);
    const agent = await agentToken(small, 'ws-attacker');
    for (const [token, query, variables] of [
      [owner.token, ATTACKER_AS_USER(5), { n: 100, m: 500 }],
      [agent, ATTACKER_AS_AGENT(3), { n: 100, m: 500, p: 500 }],
    ] as const) {
      const subscriber = subscribe(small.url, token, query, variables);
      await subscriber.completed;
      expect(subscriber.errors).toEqual([
        expect.objectContaining({
          extensions: expect.objectContaining({ code: 'BAD_USER_INPUT' }),
        }),
      ]);
      expect(subscriber.events).toEqual([]);
      await subscriber.dispose();
    }
  });
});

describe('what an answer may hold', () => {
  const snapshot = (credential: string, assets: number, at: Date) => ({
    credential_id: new Types.ObjectId(credential),
    at,
    balances: Array.from({ length: assets }, (_, i) => ({
      asset: `A${i}`,
      free: 1.5,
      used: 0.25,
      total: 1.75,
    })),
  });

  it('stops a list that holds more than its estimate once the budget is spent', async () => {
    const small = await startTestApp({ MAX_REQUEST_COST: '400' });
    try {
      const owner = await registerUser(small);
      const { credential } = await smallWallet(small, owner);
      // Stored before the 100-asset limit, say: the cost counts 100 (308 in all), the answer
      // holds 1,200.
      await CredentialBalanceModel.create(snapshot(credential, 1_200, new Date()));
      const query =
        'query ($id: ObjectID!) { credential(id: $id) { balanceHistory(first: 1) { balances { asset } } } }';
      const result = await small.raw(query, { id: credential }, owner.token);
      expect(codes(result)).toEqual(['BAD_USER_INPUT']);
      expect(result.errors![0].message).toMatch(/more items than a request may/);
      // 100 assets fit.
      await CredentialBalanceModel.updateMany(
        {},
        { $set: { balances: snapshot(credential, 100, new Date()).balances } },
      );
      expect((await small.raw(query, { id: credential }, owner.token)).errors).toBeUndefined();
    } finally {
      await small.close();
    }
  });

  it('replaces an answer over the size limit by an error', async () => {
    const small = await startTestApp({ MAX_RESPONSE_BYTES: '65536' });
    try {
      const owner = await registerUser(small);
      const credential = await binanceCredential(small, owner);
      const base = Date.now();
      await CredentialBalanceModel.insertMany(
        Array.from({ length: 20 }, (_, i) => snapshot(credential, 100, new Date(base - i * 1000))),
      );
      const query =
        'query ($id: ObjectID!, $m: Int) { credential(id: $id) { balanceHistory(first: $m) { at balances { asset free used total } } } }';
      // About 6 KB a snapshot: 5 fit in 64 KiB, 20 do not.
      const fits = await small.raw(query, { id: credential, m: 5 }, owner.token);
      expect(fits.errors).toBeUndefined();
      const large = await small.raw(query, { id: credential, m: 20 }, owner.token);
      expect(large.status).toBe(200);
      expect(large.data).toBeNull();
      expect(large.errors).toEqual([
        {
          message:
            'the answer is over the limit of 65536 bytes: ask for smaller pages or fewer fields',
          extensions: { code: 'BAD_USER_INPUT', limit: 65536 },
        },
      ]);
      expect(small.logs.some((line) => /answer over the size limit/.test(line))).toBe(true);
    } finally {
      await small.close();
    }
  });
});
