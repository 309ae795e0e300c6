import {
  CreateCredentialDocument,
  TestCredentialConnectionDocument,
  UpdateWalletDefinitionDocument,
} from './generated/graphql';
import { startTestApp, type TestApp } from './helpers/app';
import { adminToken, registerUser } from './helpers/factories';
import { startBinanceSimulator, type BinanceSimulator } from './simulators/binance.simulator';

let t: TestApp;
let hanging: BinanceSimulator;
beforeAll(async () => {
  hanging = await startBinanceSimulator({
    accounts: [{ apiKey: 'k'.repeat(20), secret: 's'.repeat(20) }],
    hang: true,
  });
  // The exchange would be waited for 5 s; the request may take 0.5 s.
  t = await startTestApp({ REQUEST_TIMEOUT_MS: '500', EXCHANGE_TIMEOUT_MS: '5000' });
});
afterAll(async () => {
  await t.close();
  await hanging.close();
});

describe('the execution time limit', () => {
  it('cuts a slow operation off with an error', async () => {
    const admin = await adminToken(t);
    const binance = await t.gql(
      UpdateWalletDefinitionDocument,
      { slug: 'binance', input: { apiConfig: { baseUrl: hanging.url, rateLimit: 1200 } } },
      admin,
    );
    const user = await registerUser(t);
    const created = await t.gql(
      CreateCredentialDocument,
      {
        input: {
          walletId: binance.data!.updateWalletDefinition.id,
          name: 'slow',
          values: [
            { key: 'api_key', value: 'k'.repeat(20) },
            { key: 'api_secret', value: 's'.repeat(20) },
          ],
        },
      },
      user.token,
    );
    const started = Date.now();
    const result = await t.gql(
      TestCredentialConnectionDocument,
      { id: created.data!.createCredential.id },
      user.token,
    );
    expect(result.errors![0]).toMatchObject({
      message: 'the operation took too long and was cut off',
      extensions: { code: 'INTERNAL_SERVER_ERROR' },
    });
    expect(Date.now() - started).toBeLessThan(3_000);
  });
});
