import { startTestApp, type TestApp } from './helpers/app';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ CORS_ORIGINS: 'https://app.example.com, http://localhost:3000' });
});
afterAll(() => t.close());

const preflight = (origin: string) =>
  fetch(`${t.url}/graphql`, {
    method: 'OPTIONS',
    headers: {
      origin,
      'access-control-request-method': 'POST',
      'access-control-request-headers': 'content-type,authorization',
    },
  });

describe('CORS_ORIGINS', () => {
  it('lets a listed origin call the API', async () => {
    const response = await preflight('https://app.example.com');
    expect(response.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
    expect(response.headers.get('access-control-allow-headers')).toMatch(/authorization/);
    const post = await fetch(`${t.url}/graphql`, {
      method: 'POST',
      headers: { origin: 'http://localhost:3000', 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ walletDefinitions { slug } }' }),
    });
    expect(post.headers.get('access-control-allow-origin')).toBe('http://localhost:3000');
  });

  it('gives any other origin nothing', async () => {
    expect(
      (await preflight('https://evil.example')).headers.get('access-control-allow-origin'),
    ).toBeNull();
    expect(
      (await preflight('https://app.example.com.evil.example')).headers.get(
        'access-control-allow-origin',
      ),
    ).toBeNull();
  });
});
