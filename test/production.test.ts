import { codes, startTestApp, type TestApp } from './helpers/app';

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
});
