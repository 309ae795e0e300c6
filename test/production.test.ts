import {
  CreateCredentialDocument,
  TestCredentialConnectionDocument,
  UpdateWalletDefinitionDocument,
} from './generated/graphql';
import { codes, startTestApp, type TestApp } from './helpers/app';
import { adminToken, registerUser } from './helpers/factories';
import { startBinanceSimulator } from './simulators/binance.simulator';

// A file of its own: mongoose's connection is per process (per test file here).
describe('in production', () => {
  let prod: TestApp;
  beforeAll(async () => {
    prod = await startTestApp({ NODE_ENV: 'production' });
  });
  afterAll(() => prod.close());

  it('turns introspection off', async () => {
    const result = await prod.raw('{ __schema { queryType { name } } }');
    expect(codes(result)).toEqual(['BAD_USER_INPUT']);
    expect(result.data).toBeUndefined();
  });

  it('still serves ordinary queries', async () => {
    const result = await prod.raw('{ walletDefinitions { slug } }');
    expect(result.errors).toBeUndefined();
  });

  it('gives no "Did you mean" suggestions', async () => {
    const result = await prod.raw('{ walletDefinitons { slug } }');
    expect(codes(result)).toEqual(['BAD_USER_INPUT']);
    expect(result.errors![0].message).not.toMatch(/Did you mean/);
  });

  it('refuses connection tests to loopback addresses (EXCHANGE_ALLOW_LOOPBACK is false there), and sends nothing', async () => {
    const simulator = await startBinanceSimulator({
      accounts: [{ apiKey: 'k'.repeat(24), secret: 's'.repeat(24) }],
    });
    try {
      expect(prod.config.exchanges.allowLoopback).toBe(false);
      const binance = await prod.gql(
        UpdateWalletDefinitionDocument,
        { slug: 'binance', input: { apiConfig: { baseUrl: simulator.url, rateLimit: 1200 } } },
        await adminToken(prod),
      );
      const user = await registerUser(prod);
      const values = [
        { key: 'api_key', value: 'k'.repeat(24) },
        { key: 'api_secret', value: 's'.repeat(24) },
      ];
      const created = await prod.gql(
        CreateCredentialDocument,
        { input: { walletId: binance.data!.updateWalletDefinition.id, name: 'Local', values } },
        user.token,
      );
      const outcome = (
        await prod.gql(
          TestCredentialConnectionDocument,
          { id: created.data!.createCredential.id },
          user.token,
        )
      ).data!.testCredentialConnection;
      expect(outcome).toMatchObject({
        ok: false,
        error:
          "the exchange's address is a loopback address: requests there are refused and nothing was sent",
      });
      expect(simulator.requests).toHaveLength(0);
    } finally {
      await simulator.close();
    }
  });
});
