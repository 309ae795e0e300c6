import { expect } from '@jest/globals';
import mongoose, { Types } from 'mongoose';
import { AiPauseWalletDocument } from './generated/graphql';
import { startTestApp, type TestApp } from './helpers/app';
import { agentToken, binanceCredential, registerUser, userWallet } from './helpers/factories';

/**
 * Every free text the API stores and shows back is held to the rule names are held to
 * (shared/validators.ts SafeText): no control characters (NUL, line breaks, ESC), no bidirectional
 * overrides or isolates, no unpaired surrogates. A refusal is BAD_USER_INPUT naming the field, and
 * nothing is stored.
 */

const UNSAFE: Array<[string, string]> = [
  ['NUL', '\u0000'],
  ['a line feed', '\n'],
  ['a carriage return', '\r'],
  ['ESC (a terminal escape)', '\u001b[31m'],
  ['a C1 control character', '\u0085'],
  ['a line separator', '\u2028'],
  ['a right-to-left override', '\u202E'],
  ['a left-to-right isolate', '\u2066'],
  ['a lone surrogate', '\uD800'],
];

let t: TestApp;
let agent: string;

const db = () => mongoose.connection.db!;

beforeAll(async () => {
  t = await startTestApp({ MAX_CREDENTIALS_PER_USER: '100', MAX_WALLETS_PER_USER: '100' });
  agent = await agentToken(t);
});
afterAll(() => t.close());

describe("aiPauseWallet's reason", () => {
  it.each(UNSAFE)('refuses %s, and pauses nothing', async (_what, unsafe) => {
    const user = await registerUser(t);
    const { id } = await userWallet(t, user, await binanceCredential(t, user));
    const before = await db()
      .collection('user_wallets')
      .findOne({ _id: new Types.ObjectId(id) });
    const paused = await t.gql(
      AiPauseWalletDocument,
      { walletId: id, reason: `exchange ${unsafe}outage` },
      agent,
    );
    expect(paused.errors![0].extensions).toEqual({ code: 'BAD_USER_INPUT', field: 'reason' });
    expect(paused.errors![0].message).not.toContain(unsafe);
    expect(
      await db()
        .collection('user_wallets')
        .findOne({ _id: new Types.ObjectId(id) }),
    ).toEqual(before);
    expect(
      await db()
        .collection('user_wallet_events')
        .countDocuments({ wallet_id: new Types.ObjectId(id), kind: 'status_changed' }),
    ).toBe(0);
  });

  it('takes any other text, trimmed and NFC-normalised, up to 500 characters', async () => {
    const user = await registerUser(t);
    const { id } = await userWallet(t, user, await binanceCredential(t, user));
    const paused = await t.gql(
      AiPauseWalletDocument,
      { walletId: id, reason: '  Bo\u0308rse geschlossen \u2014 \u53D6\u5F15\u6240 \uD83D\uDCC9 ' },
      agent,
    );
    expect(paused.data!.aiPauseWallet).toMatchObject({
      status: 'AI_PAUSED',
      pauseReason: 'B\u00F6rse geschlossen \u2014 \u53D6\u5F15\u6240 \uD83D\uDCC9',
    });
    const other = await userWallet(t, user, await binanceCredential(t, user));
    expect(
      (await t.gql(AiPauseWalletDocument, { walletId: other.id, reason: 'x'.repeat(500) }, agent))
        .errors,
    ).toBeUndefined();
  });
});
