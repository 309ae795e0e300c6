import { GraphQLObjectType, type GraphQLSchema } from 'graphql';
import { Types } from 'mongoose';
import { createLoaders } from '../src/core/loaders';
import { buildAppSchema } from '../src/graphql/schema';
import { TIMED_OUT } from '../src/shared/deadline';
import { startTestApp, type TestApp } from './helpers/app';

let t: TestApp;
let schema: GraphQLSchema;
beforeAll(async () => {
  t = await startTestApp();
  schema = await buildAppSchema(t.app.services);
});
afterAll(() => t.close());

const field = (type: string, name: string) =>
  (schema.getType(type) as GraphQLObjectType).getFields()[name];
const wallet = {
  _id: new Types.ObjectId(),
  wallet_id: new Types.ObjectId(),
  credential_id: new Types.ObjectId(),
  user_limits: { max_total_risk: 5, allowed_symbols: null, trading_mode: 'moderate' },
};

describe("the schema's plain resolvers", () => {
  it('read a stored property under its API name', () => {
    expect(field('UserWallet', 'userLimits').resolve!(wallet, {}, {}, {} as never)).toBe(
      wallet.user_limits,
    );
    expect(
      field('UserLimits', 'maxTotalRisk').resolve!(wallet.user_limits, {}, {}, {} as never),
    ).toBe(5);
  });

  it('start no field resolver past the deadline, as Deadline would', async () => {
    const loaders = createLoaders();
    const load = jest.spyOn(loaders.definitionById, 'load');
    const late = { deadline: Date.now() - 1, loaders };
    // Refused with a rejection, never a throw: an item of a list that throws would leave an
    // earlier item's promise unhandled (see asRejection in shared/answer-budget.ts).
    await expect(
      field('UserWallet', 'definition').resolve!(wallet, {}, late, {} as never),
    ).rejects.toThrow(TIMED_OUT);
    await expect(
      field('Credential', 'definition').resolve!(
        { wallet_id: wallet.wallet_id },
        {},
        late,
        {} as never,
      ),
    ).rejects.toThrow(TIMED_OUT);
    expect(load).not.toHaveBeenCalled();
    // In time, the method runs: a wallet whose definition is gone is an error of its own.
    await expect(
      field('UserWallet', 'definition').resolve!(
        wallet,
        {},
        { deadline: Date.now() + 10_000, loaders },
        {} as never,
      ),
    ).rejects.toThrow(/refers to a missing wallet definition/);
    expect(load).toHaveBeenCalledWith(wallet.wallet_id);
  });

  it('leave fields with arguments and roles to type-graphql (it validates them)', () => {
    // events is a list, so the answer budget wraps it (below); what it calls is type-graphql's.
    for (const [type, name] of [
      ['UserWallet', 'events'],
      ['UserWallet', 'auditTrail'],
      ['WalletDefinition', 'apiConfig'],
    ]) {
      expect(String(field(type, name).resolve)).not.toMatch(/order\.length|source\[property\]/);
    }
    for (const [type, name] of [
      ['UserWallet', 'auditTrail'],
      ['WalletDefinition', 'apiConfig'],
    ]) {
      expect(String(field(type, name).resolve)).not.toMatch(/assertInTime/);
    }
  });

  it('start no list past the deadline, plain properties included', async () => {
    const limits = { allowed_symbols: ['BTC', 'ETH'] };
    const late = { deadline: Date.now() - 1, itemsLeft: 100 };
    await expect(
      field('UserLimits', 'allowedSymbols').resolve!(limits, {}, late, {} as never),
    ).rejects.toThrow(TIMED_OUT);
    expect(late.itemsLeft).toBe(100);
  });

  it("count every list's items and every JSON object's values against the request's budget", async () => {
    const context = { deadline: Date.now() + 10_000, itemsLeft: 10 };
    const symbols = (list: string[]) =>
      field('UserLimits', 'allowedSymbols').resolve!(
        { allowed_symbols: list },
        {},
        context,
        {} as never,
      );
    expect(symbols(['BTC', 'ETH'])).toEqual(['BTC', 'ETH']);
    expect(context.itemsLeft).toBe(8);
    const after = { userLimits: { allowedSymbols: ['BTC', 'ETH'] } };
    expect(field('UserWalletEvent', 'after').resolve!({ after }, {}, context, {} as never)).toBe(
      after,
    );
    // userLimits, allowedSymbols, BTC and ETH.
    expect(context.itemsLeft).toBe(4);
    await expect(symbols(['BTC', 'ETH', 'SOL', 'XRP', 'ADA'])).rejects.toThrow(
      /more items than a request may/,
    );
    // Over the budget, a JSON object is refused the same way.
    await expect(
      field('UserWalletEvent', 'after').resolve!({ after }, {}, context, {} as never),
    ).rejects.toThrow(/more items than a request may/);
  });
});
