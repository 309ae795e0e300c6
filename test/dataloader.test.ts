import { UserWalletsWithLinksDocument } from './generated/graphql';
import { startTestApp, type TestApp } from './helpers/app';
import { commandsFor } from './helpers/commands';
import { binanceCredential, registerUser, userWallet, type TestUser } from './helpers/factories';

let t: TestApp;
beforeAll(async () => {
  // One user with 100 wallets, each on its own credential: above the default caps.
  t = await startTestApp({ MAX_CREDENTIALS_PER_USER: '200', MAX_WALLETS_PER_USER: '200' });
});
afterAll(() => t.close());

/** A user with `n` wallets, each on its own credential (one live wallet per credential). */
async function userWith(n: number): Promise<TestUser> {
  const user = await registerUser(t);
  for (let done = 0; done < n; done += 10) {
    await Promise.all(
      Array.from({ length: Math.min(10, n - done) }, async () =>
        userWallet(t, user, await binanceCredential(t, user)),
      ),
    );
  }
  return user;
}

describe('links through DataLoader', () => {
  it('lists 1, 10 and 100 wallets with definition, credential and its definition in the same few commands', async () => {
    const counts: Record<number, string[]> = {};
    for (const n of [1, 10, 100]) {
      const user = await userWith(n);
      counts[n] = await commandsFor(async () => {
        const result = await t.gql(UserWalletsWithLinksDocument, {}, user.token);
        expect(result.errors).toBeUndefined();
        expect(result.data!.userWallets).toHaveLength(n);
        expect(
          result.data!.userWallets.every(
            (w) => w.definition.slug === 'binance' && w.credential.definition.slug === 'binance',
          ),
        ).toBe(true);
      });
    }
    // The caller's account, the wallets, their definitions, their credentials.
    expect(counts[1]).toEqual([
      'find users',
      'find user_wallets',
      'find wallets',
      'find credentials',
    ]);
    expect(counts[10]).toEqual(counts[1]);
    expect(counts[100]).toEqual(counts[1]);
  });
});
