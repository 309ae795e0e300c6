import mongoose from 'mongoose';
import { codes, startTestApp, type TestApp } from './helpers/app';
import { registerUser } from './helpers/factories';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t.close());

describe('HTTP endpoints', () => {
  it('answers /health while the process is up', async () => {
    const response = await fetch(`${t.url}/health`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'ok' });
  });

  it('answers /ready when the database answers a ping', async () => {
    const response = await fetch(`${t.url}/ready`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'ready', database: 'up' });
  });

  it('serves queries over GET /graphql', async () => {
    const query = encodeURIComponent('{ walletDefinitions { slug } }');
    const response = await fetch(`${t.url}/graphql?query=${query}`, {
      headers: { accept: 'application/json', 'apollo-require-preflight': 'true' },
    });
    expect(response.status).toBe(200);
    const body = (await response.json()) as {
      data: { walletDefinitions: Array<{ slug: string }> };
    };
    expect(body.data.walletDefinitions.map((d) => d.slug)).toContain('binance');
  });

  it('refuses a mutation over GET', async () => {
    const query = encodeURIComponent('mutation { seedWalletDefinitions { slug } }');
    const response = await fetch(`${t.url}/graphql?query=${query}`, {
      headers: { 'apollo-require-preflight': 'true' },
    });
    expect(response.status).toBe(405);
  });

  it('blocks a simple cross-site GET (CSRF prevention)', async () => {
    const query = encodeURIComponent('{ walletDefinitions { slug } }');
    const response = await fetch(`${t.url}/graphql?query=${query}`, {
      headers: { accept: 'application/json' },
    });
    expect(response.status).toBe(400);
  });

  it('serves the GraphiQL page to browsers on /graphql and /graphiql', async () => {
    for (const path of ['/graphql', '/graphiql']) {
      const response = await fetch(`${t.url}${path}`, {
        headers: { accept: 'text/html,application/xhtml+xml' },
      });
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toMatch(/text\/html/);
      expect(response.headers.get('content-security-policy')).toMatch(
        /default-src 'none'; script-src 'self'/,
      );
      expect(response.headers.get('x-frame-options')).toBe('DENY');
      expect(response.headers.get('x-content-type-options')).toBe('nosniff');
      const html = await response.text();
      expect(html).toContain('/graphiql/assets/graphiql.js');
      expect(html).not.toMatch(/<script>/);
      expect(html).not.toMatch(/https?:\/\//);
    }
  });

  it('serves every GraphiQL asset itself, and nothing else from node_modules', async () => {
    for (const name of ['react.js', 'react-dom.js', 'graphiql.js', 'graphiql.css', 'init.js']) {
      const response = await fetch(`${t.url}/graphiql/assets/${name}`);
      expect(response.status).toBe(200);
      expect((await response.arrayBuffer()).byteLength).toBeGreaterThan(100);
    }
    for (const name of ['package.json', '..%2F..%2Fpackage.json', 'constructor']) {
      expect((await fetch(`${t.url}/graphiql/assets/${name}`)).status).toBe(404);
    }
  });

  it('answers unknown paths with 404', async () => {
    expect((await fetch(`${t.url}/nope`)).status).toBe(404);
  });

  it('returns a request id, taking a well-formed one from the caller', async () => {
    const response = await fetch(`${t.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': 'trace-123' },
      body: JSON.stringify({ query: '{ walletDefinitions { slug } }' }),
    });
    expect(response.headers.get('x-request-id')).toBe('trace-123');
    const generated = await fetch(`${t.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': 'bad id with spaces' },
      body: JSON.stringify({ query: '{ walletDefinitions { slug } }' }),
    });
    expect(generated.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe('request errors', () => {
  it('turns a malformed body into BAD_USER_INPUT', async () => {
    const response = await fetch(`${t.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"query": ',
    });
    expect(response.status).toBe(400);
    const body = (await response.json()) as { errors: Array<{ extensions: { code: string } }> };
    expect(body.errors[0].extensions.code).toBe('BAD_USER_INPUT');
  });

  it('refuses a body over 100 KiB', async () => {
    const response = await fetch(`${t.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: `{ walletDefinitions { slug } } # ${'x'.repeat(110 * 1024)}` }),
    });
    expect(response.status).toBe(413);
    const body = (await response.json()) as {
      errors: Array<{ message: string; extensions: { code: string } }>;
    };
    expect(body.errors[0]).toMatchObject({
      message: 'request body over the limit of 100kb',
      extensions: { code: 'BAD_USER_INPUT' },
    });
  });

  it('turns syntax and validation errors into BAD_USER_INPUT', async () => {
    expect(codes(await t.raw('{ walletDefinitions { slug '))).toEqual(['BAD_USER_INPUT']);
    expect(codes(await t.raw('{ walletDefinitions { noSuchField } }'))).toEqual(['BAD_USER_INPUT']);
  });

  it('does not echo a rejected value back', async () => {
    const secret = 'sk-live-do-not-echo-me';
    const result = await t.raw(
      'mutation ($p: String!) { login(email: "a@b.co", password: $p) { token } }',
      { p: { nested: secret } },
    );
    expect(codes(result)).toEqual(['BAD_USER_INPUT']);
    expect(JSON.stringify(result)).not.toContain(secret);
    const inline = await t.raw(`{ walletDefinitions(filter: { isActive: "${secret}" }) { slug } }`);
    expect(codes(inline)).toEqual(['BAD_USER_INPUT']);
    expect(JSON.stringify(inline)).not.toContain(secret);
  });

  it('answers an unexpected failure with a generic INTERNAL_SERVER_ERROR and logs it with the request id', async () => {
    const user = await registerUser(t);
    // A stored document the API can't serialize: the failure is ours, not the caller's.
    await mongoose.connection
      .db!.collection('users')
      .updateOne({ email: user.email }, { $set: { created_at: 'not a date' } });
    const response = await fetch(`${t.url}/graphql`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: `Bearer ${user.token}`,
        'x-request-id': 'req-internal-1',
      },
      body: JSON.stringify({ query: '{ me { id createdAt } }' }),
    });
    const body = (await response.json()) as {
      errors: Array<{ message: string; extensions: Record<string, unknown> }>;
    };
    expect(body.errors[0]).toMatchObject({
      message: 'internal server error',
      extensions: { code: 'INTERNAL_SERVER_ERROR' },
    });
    expect(JSON.stringify(body)).not.toMatch(/stack|not a date|DateTime/i);
    const logged = t.logs.find(
      (line) => line.includes('req-internal-1') && line.includes('request failed'),
    );
    expect(logged).toBeDefined();
  });

  it('offers introspection outside production', async () => {
    const result = await t.raw('{ __schema { queryType { name } } }');
    expect(result.data).toEqual({ __schema: { queryType: { name: 'Query' } } });
  });
});

describe('error messages never echo values', () => {
  const cases: Array<[string, string, Record<string, unknown>]> = [
    [
      'a value with ; in it',
      'mutation ($i: RegisterInput!) { register(input: $i) { token } }',
      { i: { email: 'a@b.co', password: ['SECRETPART1;SECRETPART2'] } },
    ],
    [
      'a value quoting a path',
      'mutation ($i: RegisterInput!) { register(input: $i) { token } }',
      { i: { email: 'a@b.co', password: { x: 'SECRETPART1 at "i.password"; SECRETPART2' } } },
    ],
    [
      'a secret as an unknown field name',
      'mutation ($i: RegisterInput!) { register(input: $i) { token } }',
      { i: { email: 'a@b.co', password: 'long enough', SECRETPART1: 1 } },
    ],
    [
      'a secret where an enum goes',
      '{ walletDefinitions(filter: $f) { slug } }'.replace(
        '{ walletDefinitions',
        'query ($f: WalletDefinitionFilter) { walletDefinitions',
      ),
      { f: { type: 'SECRETPART1' } },
    ],
    [
      'a secret where a number goes',
      'mutation ($d: Int) { issueAgentToken(name: "x", expiresInDays: $d) { token } }',
      { d: 'SECRETPART1' },
    ],
  ];

  it.each(cases)('%s', async (_what, query, variables) => {
    const result = await t.raw(query, variables);
    expect(codes(result)[0]).toBe('BAD_USER_INPUT');
    expect(JSON.stringify(result)).not.toContain('SECRETPART');
    expect(result.errors![0].message).toMatch(/^Variable "\$\w+" got an invalid value/);
  });

  it('keeps the path and the reason', async () => {
    const result = await t.raw('mutation ($i: RegisterInput!) { register(input: $i) { token } }', {
      i: { email: 'a@b.co' },
    });
    expect(result.errors![0].message).toBe(
      'Variable "$i" got an invalid value: field "password" of required type "String!" was not provided',
    );
    const typed = await t.raw('mutation ($i: RegisterInput!) { register(input: $i) { token } }', {
      i: { email: 'a@b.co', password: 5 },
    });
    expect(typed.errors![0].message).toBe(
      'Variable "$i" got an invalid value at "i.password": String cannot represent this value',
    );
  });
});

describe('CORS', () => {
  it('answers no cross-origin reads by default', async () => {
    const preflight = await fetch(`${t.url}/graphql`, {
      method: 'OPTIONS',
      headers: {
        origin: 'https://evil.example',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type,authorization',
      },
    });
    expect(preflight.headers.get('access-control-allow-origin')).toBeNull();
  });
});
