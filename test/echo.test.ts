import { randomBytes } from 'node:crypto';
import { serverAudits } from 'graphql-http';
import { codes, startTestApp, type TestApp } from './helpers/app';
import {
  adminToken,
  binanceCredential,
  definitionInput,
  registerUser,
  type TestUser,
} from './helpers/factories';

/**
 * Nothing a client sends comes back in an error or goes into a log line: a marker is put in every
 * place a client can put text, and looked for in every answer and every log line. Outside
 * production, the names a client wrote (fields, arguments, types, variables, fragments,
 * operations) may be repeated, for GraphiQL's users; values never are.
 */

// A valid GraphQL name, an email's local part, a symbol's letters and a slug's, all at once.
const marker = (): string => `zq${randomBytes(5).toString('hex')}`;

interface Probe {
  what: string;
  query: string;
  variables?: Record<string, unknown>;
  operationName?: string;
  token?: 'user' | 'admin' | 'none' | 'marker';
  /**
   * An alias comes back as the answer's key and in its errors' paths: GraphQL's design. Only
   * messages and logs are checked.
   */
  keyOfTheAnswer?: true;
}

/** Values: never repeated, in any environment. */
function valueProbes(m: string, ids: { binance: string; credential: string }): Probe[] {
  const M = m.toUpperCase();
  const inputWith = (extra: string) =>
    `mutation { createCredential(input: { walletId: "${ids.binance}", name: "n", values: [{ key: "api_key", value: "k" }, { key: "api_secret", value: "s" }] ${extra} }) { id } }`;
  return [
    { what: 'a string literal in a slug', query: `{ walletDefinition(slug: "${m}") { slug } }` },
    { what: 'an enum literal', query: `{ walletDefinitions(filter: { type: ${M} }) { slug } }` },
    {
      what: 'an enum literal close to a value',
      query: `{ walletDefinitions(filter: { type: CEX${M} }) { slug } }`,
    },
    {
      what: 'an enum literal in a list',
      query: `{ userWallets(filter: { status: [${M}] }) { id } }`,
      token: 'user',
    },
    {
      what: 'a name where an Int goes',
      query: `{ managedWallets(first: ${M}) { pageInfo { hasNextPage } } }`,
    },
    {
      what: 'a string where an Int goes',
      query: `{ managedWallets(first: "${m}") { pageInfo { hasNextPage } } }`,
    },
    {
      what: 'a string where a Boolean goes',
      query: `{ walletDefinitions(filter: { isActive: "${m}" }) { slug } }`,
    },
    {
      what: 'a string where an object goes',
      query: `{ walletDefinitions(filter: "${m}") { slug } }`,
    },
    { what: 'a name where an object goes', query: `{ walletDefinitions(filter: ${M}) { slug } }` },
    { what: 'an id literal', query: `{ credential(id: "${m}") { id } }`, token: 'user' },
    {
      what: 'an id of the right shape',
      query: `{ credential(id: "${'f'.repeat(14)}${m}") { id } }`,
      token: 'user',
    },
    {
      what: 'an email literal',
      query: `mutation { login(email: "${m}@example.com", password: "${m}") { token } }`,
    },
    {
      what: 'a register literal',
      query: `mutation { register(input: { email: "${m}", password: "${m}${m}" }) { token } }`,
    },
    { what: 'an environment literal', query: inputWith(`, environment: ${M}`) },
    {
      what: 'a credential value of the wrong type',
      query: `mutation { createCredential(input: { walletId: "${ids.binance}", name: "n", values: [{ key: "${m}", value: 7 }] }) { id } }`,
      token: 'user',
    },
    {
      what: 'an unknown credential key',
      query: `mutation { createCredential(input: { walletId: "${ids.binance}", name: "n", values: [{ key: "${m}", value: "${m}" }] }) { id } }`,
      token: 'user',
    },
    {
      what: 'a symbol',
      query: `mutation { createUserWallet(input: { credentialId: "${ids.credential}", name: "w", userLimits: { maxTotalRisk: 10, allowedSymbols: ["${m}/"], tradingMode: MODERATE } }) { id } }`,
      token: 'user',
    },
    {
      what: 'an unsupported asset',
      query: `mutation { createUserWallet(input: { credentialId: "${ids.credential}", name: "w", userLimits: { maxTotalRisk: 10, allowedSymbols: ["${M}/USDT"], tradingMode: MODERATE } }) { id } }`,
      token: 'user',
    },
    {
      what: 'a slug to update',
      query: `mutation { updateWalletDefinition(slug: "${m}", input: { order: 1 }) { slug } }`,
      token: 'admin',
    },
    {
      what: 'a string where a Float goes',
      query: `mutation { updateAiManagedState(walletId: "${ids.credential}", input: { currentRisk: "${m}" }) { id } }`,
    },
    {
      what: 'a variable of the wrong type',
      query: 'query ($id: ObjectID!) { credential(id: $id) { id } }',
      variables: { id: m },
      token: 'user',
    },
    {
      what: 'a variable with an unknown field',
      query: 'query ($f: WalletDefinitionFilter) { walletDefinitions(filter: $f) { slug } }',
      variables: { f: { [m]: m } },
    },
    {
      what: 'a variable enum value',
      query: 'query ($f: WalletDefinitionFilter) { walletDefinitions(filter: $f) { slug } }',
      variables: { f: { type: M } },
    },
    {
      what: 'a variable nested deep',
      query: 'mutation ($i: CreateCredentialInput!) { createCredential(input: $i) { id } }',
      variables: {
        i: { walletId: ids.binance, name: 'n', values: [{ key: 'api_key', value: { [m]: m } }] },
      },
      token: 'user',
    },
    {
      what: 'a stray character after a literal',
      query: `{ walletDefinition(slug: "${m}"&) { slug } }`,
    },
    { what: 'an unterminated string', query: `{ walletDefinition(slug: "${m}) { slug } }` },
    { what: 'a bad escape in a string', query: `{ walletDefinition(slug: "${m}\\q") { slug } }` },
    {
      what: 'a number run into a name',
      query: `{ managedWallets(first: 1${m}) { pageInfo { hasNextPage } } }`,
    },
    { what: 'a string in a block', query: `{ walletDefinition(slug: """${m}""" x) { slug } }` },
    { what: 'a token', query: '{ me { id } }', token: 'marker' },
    {
      what: 'an alias on a failing field',
      query: `{ ${m}: walletDefinitions { apiConfig { baseUrl } } }`,
      keyOfTheAnswer: true,
    },
  ];
}

/** Names a client wrote: repeated outside production only. */
function nameProbes(m: string): Probe[] {
  return [
    { what: 'a field name', query: `{ ${m} }` },
    { what: 'a field name on a type', query: `{ walletDefinitions { ${m} } }` },
    { what: 'an argument name', query: `{ walletDefinitions(${m}: 1) { slug } }` },
    { what: 'an input field name', query: `{ walletDefinitions(filter: { ${m}: 1 }) { slug } }` },
    { what: 'a type name', query: `query ($v: ${m}) { me { id } }` },
    { what: 'a variable name', query: `query ($${m}: String) { me { id } }` },
    { what: 'an undefined variable', query: `{ walletDefinition(slug: $${m}) { slug } }` },
    { what: 'a fragment name', query: `{ me { ...${m} } }` },
    { what: 'an unused fragment', query: `fragment ${m} on User { id } { me { id } }` },
    { what: 'a fragment on an unknown type', query: `{ me { ... on ${m} { id } } }` },
    { what: 'an operation name', query: `query ${m} { me { id } } query ${m} { me { id } }` },
    { what: 'an unknown operationName', query: 'query A { me { id } }', operationName: m },
    { what: 'a directive', query: `{ me @${m} { id } }` },
    { what: 'conflicting aliases', query: `{ ${m}: me { id } ${m}: walletDefinitions { slug } }` },
  ];
}

async function send(
  t: TestApp,
  probe: Probe,
  tokens: { user: string; admin: string },
  m: string,
): Promise<string> {
  const authorization =
    probe.token === 'user'
      ? tokens.user
      : probe.token === 'admin'
        ? tokens.admin
        : probe.token === 'marker'
          ? m
          : undefined;
  const response = await fetch(`${t.url}/graphql`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(authorization ? { authorization: `Bearer ${authorization}` } : {}),
    },
    body: JSON.stringify({
      query: probe.query,
      variables: probe.variables,
      operationName: probe.operationName,
    }),
  });
  const text = await response.text();
  // The response must be answered in a contract code, and never as a server error.
  const body = JSON.parse(text) as { errors?: Array<{ extensions?: { code?: string } }> };
  expect(response.status).toBeLessThan(500);
  expect(body.errors?.length).toBeGreaterThan(0);
  for (const error of body.errors!)
    expect(['BAD_USER_INPUT', 'NOT_FOUND', 'FORBIDDEN', 'UNAUTHENTICATED', 'CONFLICT']).toContain(
      error.extensions?.code,
    );
  return (
    [...(response.headers as unknown as Iterable<[string, string]>)]
      .map(([k, v]) => `${k}: ${v}`)
      .join('\n') +
    '\n' +
    text
  );
}

function expectNoMarker(where: string, text: string, m: string): void {
  const found = [m, m.toUpperCase()].filter((form) => text.includes(form));
  if (found.length > 0) throw new Error(`${where} repeats what was sent:\n${text}`);
}

async function fixtures(t: TestApp): Promise<{
  tokens: { user: string; admin: string };
  ids: { binance: string; credential: string };
  user: TestUser;
}> {
  const user = await registerUser(t);
  const admin = await adminToken(t);
  const credential = await binanceCredential(t, user);
  const binance = await t.raw<{ walletDefinition: { id: string } }>(
    '{ walletDefinition(slug: "binance") { id } }',
  );
  return {
    tokens: { user: user.token, admin },
    ids: { binance: binance.data!.walletDefinition.id, credential },
    user,
  };
}

describe.each([
  ['production', { NODE_ENV: 'production' }],
  ['development', { NODE_ENV: 'development' }],
])('in %s', (environment, overrides) => {
  let t: TestApp;
  let f: Awaited<ReturnType<typeof fixtures>>;
  beforeAll(async () => {
    t = await startTestApp({ ...overrides, LOG_LEVEL: 'debug' });
    f = await fixtures(t);
  });
  afterAll(() => t.close());

  it('repeats no value sent, in any answer or log line', async () => {
    for (let i = 0; i < valueProbes('', f.ids).length; i++) {
      const m = marker();
      const real = valueProbes(m, f.ids)[i];
      const logsBefore = t.logs.length;
      const answer = await send(t, real, f.tokens, m);
      const messages = real.keyOfTheAnswer
        ? JSON.stringify(
            (
              JSON.parse(answer.slice(answer.indexOf('\n{') + 1)) as {
                errors: Array<{ message: string }>;
              }
            ).errors.map((e) => e.message),
          )
        : answer;
      expectNoMarker(`the answer to ${real.what}`, messages, m);
      expectNoMarker(`the log lines of ${real.what}`, t.logs.slice(logsBefore).join(''), m);
    }
  });

  it(
    environment === 'production'
      ? 'repeats no name the client wrote, and no suggestion'
      : 'may repeat names the client wrote, never a value',
    async () => {
      for (let i = 0; i < nameProbes('').length; i++) {
        const m = marker();
        const real = nameProbes(m)[i];
        const logsBefore = t.logs.length;
        const answer = await send(t, real, f.tokens, m);
        expectNoMarker(`the log lines of ${real.what}`, t.logs.slice(logsBefore).join(''), m);
        if (environment === 'production') {
          expectNoMarker(`the answer to ${real.what}`, answer, m);
          expect(answer).not.toMatch(/Did you mean/);
        }
      }
    },
  );

  it('names the place of an error instead', async () => {
    const m = marker();
    const unknownField = await t.raw(`{ walletDefinitions { ${m} } }`);
    if (environment === 'production')
      expect(unknownField.errors![0].message).toBe(
        'Cannot query field "…" on type "WalletDefinition" at line 1, column 23.',
      );
    else
      expect(unknownField.errors![0].message).toMatch(
        new RegExp(`^Cannot query field "${m}" on type "WalletDefinition"\\.`),
      );
    const enumValue = await t.raw(`{ walletDefinitions(filter: { type: CEXX }) { slug } }`);
    expect(enumValue.errors![0].message).toMatch(
      /^Not a value of the enum "WalletType"(\.| at line 1, column 37\.$)/,
    );
    if (environment === 'production')
      expect(enumValue.errors![0].message).not.toMatch(/Did you mean/);
    else expect(enumValue.errors![0].message).toMatch(/Did you mean the enum value "CEX"/);
    const variable = await t.raw(
      'mutation ($i: CreateCredentialInput!) { createCredential(input: $i) { id } }',
      { i: { walletId: f.ids.binance, name: 'n', values: [{ key: 'k', value: 7 }] } },
      f.tokens.user,
    );
    expect(variable.errors![0].message).toBe(
      environment === 'production'
        ? 'Variable "$…" got an invalid value at "….values[0].value": String cannot represent this value at line 1, column 11.'
        : 'Variable "$i" got an invalid value at "i.values[0].value": String cannot represent this value',
    );
  });

  it('answers a syntax error with HTTP 400, BAD_USER_INPUT and its position, without the source', async () => {
    const secret = marker();
    // The input object is never closed: the parser stops at the ")".
    const query = `mutation { createCredential(input: { walletId: "x", name: "n", values: [{ key: "api_secret", value: "${secret}" }] ) { id } }`;
    const column = query.indexOf('] )') + 3;
    const response = await fetch(`${t.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query }),
    });
    expect(response.status).toBe(400);
    const body = (await response.json()) as {
      errors: Array<{ message: string; locations: unknown; extensions: unknown }>;
      data?: unknown;
    };
    expect(body.data).toBeUndefined();
    expect(body.errors).toEqual([
      {
        message: `Syntax Error at line 1, column ${column}: the document is not valid GraphQL.`,
        locations: [{ line: 1, column }],
        extensions: { code: 'BAD_USER_INPUT' },
      },
    ]);
    expect(JSON.stringify(body)).not.toContain(secret);
  });

  it('refuses a document over the token limit as a syntax error, not a server error', async () => {
    const result = await t.raw(`{ walletDefinitions { ${'slug '.repeat(2100)}} }`);
    expect(result.status).toBe(400);
    expect(codes(result)).toEqual(['BAD_USER_INPUT']);
    expect(result.errors![0].message).toMatch(
      /^Token limit of 2000 exceeded at line 1, column \d+\.$/,
    );
  });

  it('answers with no-store and nosniff on /graphql', async () => {
    const ok = await t.raw('{ walletDefinitions { slug } }');
    const refused = await t.raw('{');
    for (const result of [ok, refused]) {
      expect(result.headers.get('cache-control')).toBe('no-store');
      expect(result.headers.get('x-content-type-options')).toBe('nosniff');
    }
  });

  it("passes graphql-http's audits of status codes for request errors", async () => {
    const wanted = new Set(['556A', '572B', '74FF', 'FDE2', '7B9B', 'D586', '5E5B']);
    const results = [];
    for (const audit of serverAudits({ url: `${t.url}/graphql`, fetchFn: fetch })) {
      if (!wanted.has(audit.id)) continue;
      const result = await audit.fn();
      results.push(
        `${audit.id} ${result.status}${result.status === 'ok' ? '' : `: ${result.reason}`}`,
      );
    }
    expect(results.sort()).toEqual([...wanted].sort().map((id) => `${id} ok`));
  });
});

describe('what production keeps from everyone but the database', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ NODE_ENV: 'production' });
  });
  afterAll(() => t.close());

  it('stores a slug exactly but never repeats it', async () => {
    const admin = await adminToken(t);
    const input = definitionInput();
    await t.raw(
      'mutation ($i: CreateWalletDefinitionInput!) { createWalletDefinition(input: $i) { slug } }',
      { i: input },
      admin,
    );
    const again = await t.raw(
      'mutation ($i: CreateWalletDefinitionInput!) { createWalletDefinition(input: $i) { slug } }',
      { i: input },
      admin,
    );
    expect(codes(again)).toEqual(['CONFLICT']);
    expect(JSON.stringify(again.errors)).not.toContain(input.slug);
  });
});
