import { codes, startTestApp, type TestApp } from './helpers/app';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t.close());

/** Refused before any resolver runs: no data at all, and the limit named. */
const refused = async (query: string, limit: RegExp) => {
  const result = await t.raw(query);
  expect(new Set(codes(result))).toEqual(new Set(['BAD_USER_INPUT']));
  expect(result.errors!.some((e) => limit.test(e.message))).toBe(true);
  expect(result.data).toBeUndefined();
};

describe('GraphQL abuse limits', () => {
  it('refuses a query deeper than 10', async () => {
    const deep = (n: number) =>
      `{ __type(name: "Query") { fields { type ${'{ ofType '.repeat(n)}{ name }${' }'.repeat(n)} } } }`;
    expect((await t.raw(deep(6))).errors).toBeUndefined();
    await refused(deep(8), /depth limit of 10/);
  });

  it('refuses more than 15 aliases', async () => {
    const aliases = (n: number) =>
      `{ ${Array.from({ length: n }, (_, i) => `a${i}: walletDefinitions { slug }`).join(' ')} }`;
    expect((await t.raw(aliases(15))).errors).toBeUndefined();
    await refused(aliases(16), /Aliases limit of 15/);
  });

  it('refuses a document of more than 2000 tokens', async () => {
    await refused(`{ walletDefinitions { ${'slug '.repeat(2100)}} }`, /Token limit of 2000/);
  });

  it('accepts the heaviest documented queries', async () => {
    const agentPage = `{ managedWallets(first: 500) { edges { cursor node { id name status pauseReason version createdAt updatedAt
      userLimits { maxTotalRisk allowedSymbols tradingMode }
      aiManagedState { currentRisk dailyPnl openPositions currentMaxPositionSize currentLeverage adaptiveStopLoss riskScore marketSentiment confidenceLevel lastAiDecision }
      definition { slug name features { spot futures perpetuals leverage { min max } supportedAssets } }
      credential { name isConnected lastVerifiedAt definition { slug } }
      events(first: 10) { id kind actor actorRole before after at } } } pageInfo { hasNextPage endCursor } } }`;
    const userPage = `{ userWallets { id name status pauseReason version userLimits { maxTotalRisk allowedSymbols tradingMode }
      aiManagedState { currentRisk dailyPnl openPositions currentMaxPositionSize currentLeverage adaptiveStopLoss riskScore marketSentiment confidenceLevel lastAiDecision }
      definition { name slug features { leverage { max } } } credential { name isConnected fields { key label encrypted isSet hint } definition { slug } }
      events(first: 10) { kind actor actorRole before after at } createdAt updatedAt } }`;
    for (const query of [agentPage, userPage]) {
      const result = await t.raw(query);
      // Unauthenticated, so refused by the auth checker: but not by a limit.
      expect(result.errors!.every((e) => !/limit of/.test(e.message))).toBe(true);
      expect(codes(result)).toEqual(['UNAUTHENTICATED']);
    }
  });

  it('refuses an operation whose cost passes 600000', async () => {
    await refused(
      '{ managedWallets(first: 500) { edges { node { id events(first: 100) { id kind actor actorRole before after at } } } } }',
      /cost of \d+ is over the limit of 600000/,
    );
  });

  it('refuses batched HTTP requests', async () => {
    const response = await fetch(`${t.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify([
        { query: '{ walletDefinitions { slug } }' },
        { query: '{ walletDefinitions { slug } }' },
      ]),
    });
    expect(response.status).toBe(400);
    const body = (await response.json()) as { errors: Array<{ extensions: { code: string } }> };
    expect(body.errors[0].extensions.code).toBe('BAD_USER_INPUT');
  });

  it('still lets GraphiQL introspect the schema', async () => {
    const result = await t.raw(
      '{ __schema { types { name fields { name type { name ofType { name ofType { name ofType { name ofType { name } } } } } } } } }',
    );
    expect(result.errors).toBeUndefined();
  });
});
