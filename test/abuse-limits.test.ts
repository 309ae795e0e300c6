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
    const deep = (n: number) => `{ __type(name: "Query") { fields { type ${'{ ofType '.repeat(n)}{ name }${' }'.repeat(n)} } } }`;
    expect((await t.raw(deep(6))).errors).toBeUndefined();
    await refused(deep(8), /depth limit of 10/);
  });

  it('refuses more than 15 aliases', async () => {
    const aliases = (n: number) => `{ ${Array.from({ length: n }, (_, i) => `a${i}: walletDefinitions { slug }`).join(' ')} }`;
    expect((await t.raw(aliases(15))).errors).toBeUndefined();
    await refused(aliases(16), /Aliases limit of 15/);
  });

  it('refuses a document of more than 2000 tokens', async () => {
    await refused(`{ walletDefinitions { ${'slug '.repeat(2100)}} }`, /Token limit of 2000/);
  });

  it('refuses an operation whose cost passes 5000', async () => {
    const fragments = ['fragment F0 on WalletDefinition { slug name type description logo isActive order createdAt updatedAt authFields { key label type required encrypted } }'];
    for (let i = 1; i <= 8; i++) fragments.push(`fragment F${i} on WalletDefinition { ...F${i - 1} ...F${i - 1} }`);
    await refused(`{ walletDefinitions { ...F8 } } ${fragments.join(' ')}`, /Query Cost limit of 5000/);
  });

  it('refuses batched HTTP requests', async () => {
    const response = await fetch(`${t.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify([{ query: '{ walletDefinitions { slug } }' }, { query: '{ walletDefinitions { slug } }' }]),
    });
    expect(response.status).toBe(400);
    const body = (await response.json()) as { errors: Array<{ extensions: { code: string } }> };
    expect(body.errors[0].extensions.code).toBe('BAD_USER_INPUT');
  });

  it('still lets GraphiQL introspect the schema', async () => {
    const result = await t.raw('{ __schema { types { name fields { name type { name ofType { name ofType { name ofType { name ofType { name } } } } } } } } }');
    expect(result.errors).toBeUndefined();
  });
});
