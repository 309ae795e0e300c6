import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { binanceConnector } from '../src/exchanges/binance.connector';
import { describeExchangeError, scrubSecrets } from '../src/exchanges/errors';
import { loadCcxt, pointAtBaseUrl, rebaseUrl, resolveBaseUrl } from '../src/exchanges/hosts';
import { checkConnection } from '../src/exchanges/registry';
import type { ConnectionCheckInput, ConnectionCheckResult } from '../src/exchanges/types';
import { startBinanceSimulator, type BinanceSimulator } from './simulators/binance.simulator';
import { startHyperliquidSimulator, type HyperliquidSimulator } from './simulators/hyperliquid.simulator';

/** 64 characters, like Binance's keys and secrets. */
const fake = (label: string) => createHash('sha256').update(label).digest('hex');
const binanceKey = (name: string) => ({ api_key: fake(`${name} key`), api_secret: fake(`${name} secret`) });
const KEYS = { good: binanceKey('good'), withdrawing: binanceKey('withdrawing'), open: binanceKey('open'), unknown: binanceKey('unknown') };
const WRONG_SECRET = fake('wrong secret');

// Well-known secp256k1 vectors: private key -> Ethereum address.
const VECTOR_KEY = '0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318';
const VECTOR_ADDRESS = '0x2c7536E3605D9C16a7a3D7b1898e529396a65c23';
const KEY_ONE = `0x${'0'.repeat(63)}1`;
const KEY_ONE_ADDRESS = '0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf';
const KEY_TWO = `0x${'0'.repeat(63)}2`;
const KEY_TWO_ADDRESS = '0x2B5AD5c4795c026514f8317c7a215E218DcCD6cF';
const OWNER = `0x${'ab'.repeat(20)}`;

const binanceInput = (baseUrl: string | null, values: Record<string, string>, extra: Partial<ConnectionCheckInput> = {}): ConnectionCheckInput => ({
  slug: 'binance',
  environment: 'mainnet',
  baseUrl,
  values,
  timeoutMs: 5_000,
  allowWithdrawalKeys: false,
  ...extra,
});

const hyperliquidInput = (baseUrl: string | null, values: Record<string, string>, extra: Partial<ConnectionCheckInput> = {}): ConnectionCheckInput => ({
  ...binanceInput(baseUrl, values, extra),
  slug: 'hyperliquid',
});

/** Every check goes through here: no input value may appear anywhere in the result. */
async function check(input: ConnectionCheckInput): Promise<ConnectionCheckResult> {
  const result = await checkConnection(input);
  const serialised = JSON.stringify(result);
  for (const value of Object.values(input.values)) {
    expect(serialised).not.toContain(value);
    expect(serialised.toLowerCase()).not.toContain(value.toLowerCase().replace(/^0x/, ''));
  }
  return result;
}

const paths = (simulator: { requests: { path: string }[] }) => simulator.requests.map((request) => request.path.split('?')[0]);

async function closedPortUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

describe('checkConnection', () => {
  it('has no test for an unknown exchange, and says so without throwing', async () => {
    expect(await check(binanceInput('https://example.com', {}, { slug: 'kraken' }))).toEqual({
      ok: false,
      error: 'no connection test exists for exchange "kraken" yet',
      warnings: [],
    });
  });

  it('fails when no URL is configured for the environment', async () => {
    expect(await check(binanceInput(null, KEYS.good, { environment: 'testnet' }))).toEqual({
      ok: false,
      error: 'no testnet URL is configured for this exchange',
      warnings: [],
    });
    expect((await check(hyperliquidInput(null, { private_key: VECTOR_KEY }))).error).toBe('no mainnet URL is configured for this exchange');
  });

  it('refuses base URLs that are not http(s), or that carry user info', async () => {
    expect((await check(binanceInput('not a url', KEYS.good))).error).toBe('the configured base URL is not a valid URL');
    expect((await check(binanceInput('ftp://127.0.0.1/', KEYS.good))).error).toBe('the configured base URL must use https');
    expect((await check(binanceInput('https://user:pass@api.binance.com', KEYS.good))).error).toMatch(/must not contain a user name/);
  });

  it('throws only for a bug, and scrubs the input values from what it throws', async () => {
    const bug = jest.spyOn(binanceConnector, 'check').mockRejectedValue(new TypeError(`cannot read ${KEYS.good.api_secret}`));
    try {
      const thrown: unknown = await checkConnection(binanceInput('https://api.binance.com', KEYS.good)).catch((error: unknown) => error);
      expect(thrown).toBeInstanceOf(Error);
      expect((thrown as Error).message).toBe('the binance connection check failed unexpectedly: cannot read [redacted]');
      expect((thrown as Error).stack).not.toContain(KEYS.good.api_secret);
    } finally {
      bug.mockRestore();
    }
  });
});

describe('base URLs', () => {
  it("replace the origin and prefix the base URL's path", () => {
    expect(rebaseUrl('https://api.binance.com/api/v3', new URL('http://127.0.0.1:5555/proxy'))).toBe('http://127.0.0.1:5555/proxy/api/v3');
    expect(rebaseUrl('https://api.binance.com/api/v3', new URL('https://gateway.example/'))).toBe('https://gateway.example/api/v3');
    expect(rebaseUrl('https://api.hyperliquid.xyz', new URL('http://localhost:8080'))).toBe('http://localhost:8080');
  });

  it('point every API URL of a ccxt instance at the base URL', () => {
    const ccxt = loadCcxt();
    for (const exchange of [new ccxt.binance(), new ccxt.hyperliquid()]) {
      pointAtBaseUrl(exchange, new URL('http://127.0.0.1:5555/proxy'));
      const urls = JSON.stringify(exchange.urls.api).match(/"[a-z]+:\/\/[^"]*"/g) ?? [];
      expect(urls.length).toBeGreaterThan(1);
      for (const url of urls) expect(url).toMatch(/^"http:\/\/127\.0\.0\.1:5555\/proxy/);
    }
  });

  it('accept plain http for loopback hosts only', () => {
    for (const url of ['http://127.0.0.1:1', 'http://127.8.9.10', 'http://localhost:3000', 'http://[::1]:80', 'https://api.binance.com']) {
      expect(resolveBaseUrl({ baseUrl: url, environment: 'mainnet' })).toHaveProperty('url');
    }
    for (const url of ['http://api.binance.com', 'http://10.0.0.1', 'http://0.0.0.0:80', 'http://[::ffff:127.0.0.1]']) {
      expect(resolveBaseUrl({ baseUrl: url, environment: 'mainnet' })).toEqual({ error: 'plain http is only allowed for loopback hosts' });
    }
  });
});

describe('Binance', () => {
  let mainnet: BinanceSimulator;
  let testnet: BinanceSimulator;
  beforeAll(async () => {
    mainnet = await startBinanceSimulator({
      accounts: [
        { apiKey: KEYS.good.api_key, secret: KEYS.good.api_secret, enableWithdrawals: false, ipRestrict: true },
        { apiKey: KEYS.withdrawing.api_key, secret: KEYS.withdrawing.api_secret, enableWithdrawals: true, ipRestrict: true },
        { apiKey: KEYS.open.api_key, secret: KEYS.open.api_secret, enableWithdrawals: false, ipRestrict: false },
      ],
    });
    testnet = await startBinanceSimulator({ accounts: [{ apiKey: KEYS.good.api_key, secret: KEYS.good.api_secret }], testnet: true });
  });
  afterAll(async () => {
    await mainnet.close();
    await testnet.close();
  });

  it('passes a valid key: a signed account request, then its API restrictions', async () => {
    const seen = mainnet.requests.length;
    expect(await check(binanceInput(mainnet.url, KEYS.good))).toEqual({ ok: true, warnings: [] });
    const requests = mainnet.requests.slice(seen);
    expect(requests.map((request) => request.path.split('?')[0])).toEqual(['/api/v3/account', '/sapi/v1/account/apiRestrictions']);
    for (const request of requests) {
      expect(request.headers['x-mbx-apikey']).toBe(KEYS.good.api_key);
      expect(request.path).toMatch(/[?&]timestamp=\d+.*&signature=[0-9a-f]{64}$/);
    }
  });

  it('rejects a wrong secret', async () => {
    expect(await check(binanceInput(mainnet.url, { ...KEYS.good, api_secret: WRONG_SECRET }))).toEqual({
      ok: false,
      error: 'the exchange rejected the credentials',
      warnings: [],
    });
  });

  it('rejects an unknown key', async () => {
    expect((await check(binanceInput(mainnet.url, KEYS.unknown))).error).toBe('the exchange rejected the credentials');
  });

  it('says which value is missing', async () => {
    expect((await check(binanceInput(mainnet.url, { api_key: KEYS.good.api_key }))).error).toBe('the credential has no api_secret');
  });

  it('fails a key that can withdraw funds', async () => {
    const result = await check(binanceInput(mainnet.url, KEYS.withdrawing));
    expect(result.ok).toBe(false);
    expect(result.error).toMatch(/can withdraw funds and must not/);
  });

  it('passes a key that can withdraw funds, with a warning, when the platform allows such keys', async () => {
    expect(await check(binanceInput(mainnet.url, KEYS.withdrawing, { allowWithdrawalKeys: true }))).toEqual({
      ok: true,
      warnings: ['this API key can withdraw funds'],
    });
  });

  it('warns about a key not restricted to trusted IPs', async () => {
    expect(await check(binanceInput(mainnet.url, KEYS.open))).toEqual({
      ok: true,
      warnings: ['this API key is not restricted to trusted IP addresses'],
    });
  });

  it('on testnet, uses the testnet URL and skips the API restrictions (the testnet has no /sapi)', async () => {
    const seenMainnet = mainnet.requests.length;
    const seenTestnet = testnet.requests.length;
    expect(await check(binanceInput(testnet.url, KEYS.good, { environment: 'testnet' }))).toEqual({ ok: true, warnings: [] });
    expect(paths({ requests: testnet.requests.slice(seenTestnet) })).toEqual(['/api/v3/account']);
    expect(mainnet.requests.length).toBe(seenMainnet);
  });

  it("keeps the base URL's path", async () => {
    const proxied = await startBinanceSimulator({ accounts: [{ apiKey: KEYS.good.api_key, secret: KEYS.good.api_secret }], pathPrefix: '/proxy' });
    try {
      expect(await check(binanceInput(`${proxied.url}/proxy/`, KEYS.good))).toEqual({ ok: true, warnings: [] });
      expect(paths(proxied)).toEqual(['/proxy/api/v3/account', '/proxy/sapi/v1/account/apiRestrictions']);
    } finally {
      await proxied.close();
    }
  });

  it('says an exchange on a closed port cannot be reached', async () => {
    expect(await check(binanceInput(await closedPortUrl(), KEYS.good))).toEqual({
      ok: false,
      error: 'the exchange could not be reached',
      warnings: [],
    });
  });

  it('gives up on an exchange that never answers after the timeout', async () => {
    const hanging = await startBinanceSimulator({ accounts: [], hang: true });
    try {
      const started = Date.now();
      const result = await check(binanceInput(hanging.url, KEYS.good, { timeoutMs: 1_500 }));
      expect(result).toEqual({ ok: false, error: 'the exchange did not answer within 1.5 s', warnings: [] });
      expect(Date.now() - started).toBeLessThan(4_000);
      expect(hanging.requests).toHaveLength(1);
    } finally {
      await hanging.close();
    }
  });

  it('never passes on text from the exchange, even when it echoes the secret', async () => {
    const echoing = await startBinanceSimulator({ accounts: [{ apiKey: KEYS.good.api_key, secret: KEYS.good.api_secret }], echoSecretInErrors: true });
    try {
      const badlySigned = `${echoing.url}/api/v3/account?timestamp=${Date.now()}&signature=00`;
      const answer = await fetch(badlySigned, { headers: { 'X-MBX-APIKEY': KEYS.good.api_key } });
      expect(await answer.text()).toContain(KEYS.good.api_secret); // the simulator does leak it
      const result = await check(binanceInput(echoing.url, { ...KEYS.good, api_secret: WRONG_SECRET }));
      expect(result.error).toBe('the exchange rejected the credentials');
      expect(JSON.stringify(result)).not.toContain(KEYS.good.api_secret);
    } finally {
      await echoing.close();
    }
  });

  it('refuses plain http to a non-loopback host without sending a request', async () => {
    // 0.0.0.0 would reach the simulator on this machine: the refusal must come before any request.
    const port = new URL(mainnet.url).port;
    const seen = mainnet.requests.length;
    expect(await check(binanceInput(`http://0.0.0.0:${port}`, KEYS.good))).toEqual({
      ok: false,
      error: 'plain http is only allowed for loopback hosts',
      warnings: [],
    });
    expect(mainnet.requests.length).toBe(seen);
  });
});

describe('Hyperliquid', () => {
  let simulator: HyperliquidSimulator;
  beforeAll(async () => {
    simulator = await startHyperliquidSimulator({
      accounts: [{ address: VECTOR_ADDRESS }, { address: OWNER, agents: [KEY_ONE_ADDRESS] }],
    });
  });
  afterAll(() => simulator.close());

  const bodiesSince = (seen: number) => simulator.requests.slice(seen).map((request) => request.body);

  it("derives the account's address from the private key and finds the account", async () => {
    const seen = simulator.requests.length;
    expect(await check(hyperliquidInput(simulator.url, { private_key: VECTOR_KEY }))).toEqual({ ok: true, warnings: [] });
    const user = VECTOR_ADDRESS.toLowerCase();
    expect(bodiesSince(seen)).toEqual([
      { type: 'clearinghouseState', user },
      { type: 'userRole', user },
    ]);
    expect(simulator.requests.slice(seen).every((request) => request.method === 'POST' && request.path === '/info')).toBe(true);
  });

  it('accepts a private key without 0x, and a wallet_address that is the key\'s own in any case', async () => {
    const values = { private_key: VECTOR_KEY.slice(2), wallet_address: VECTOR_ADDRESS.toUpperCase().replace('0X', '0x') };
    expect(await check(hyperliquidInput(simulator.url, values))).toEqual({ ok: true, warnings: [] });
  });

  it("passes an approved agent's key with the account's wallet_address", async () => {
    const seen = simulator.requests.length;
    expect(await check(hyperliquidInput(simulator.url, { private_key: KEY_ONE, wallet_address: OWNER.toUpperCase().replace('0X', '0x') }))).toEqual({
      ok: true,
      warnings: [],
    });
    expect(bodiesSince(seen)).toEqual([
      { type: 'clearinghouseState', user: OWNER },
      { type: 'userRole', user: KEY_ONE_ADDRESS.toLowerCase() },
    ]);
  });

  it('fails a key that is not an approved agent of the wallet_address', async () => {
    expect(await check(hyperliquidInput(simulator.url, { private_key: KEY_TWO, wallet_address: OWNER }))).toEqual({
      ok: false,
      error: 'this key is not an approved agent of the account',
      warnings: [],
    });
    // An agent, but of another account.
    expect((await check(hyperliquidInput(simulator.url, { private_key: KEY_ONE, wallet_address: VECTOR_ADDRESS }))).error).toBe(
      'this key is not an approved agent of the account',
    );
  });

  it('fails when no account exists for the address', async () => {
    const seen = simulator.requests.length;
    expect((await check(hyperliquidInput(simulator.url, { private_key: KEY_TWO }))).error).toBe('no Hyperliquid account exists for this address');
    expect(bodiesSince(seen)).toContainEqual({ type: 'userRole', user: KEY_TWO_ADDRESS.toLowerCase() });
  });

  it("says an agent's key needs the account's wallet_address", async () => {
    expect((await check(hyperliquidInput(simulator.url, { private_key: KEY_ONE }))).error).toMatch(/set wallet_address/);
  });

  it('explains a malformed private key without echoing it, and sends nothing', async () => {
    const seen = simulator.requests.length;
    for (const privateKey of [VECTOR_KEY.slice(0, -2), `zz${VECTOR_KEY.slice(4)}`, ` ${VECTOR_KEY}`]) {
      expect(await check(hyperliquidInput(simulator.url, { private_key: privateKey }))).toEqual({
        ok: false,
        error: 'the private key must be 64 hexadecimal characters, optionally prefixed with 0x',
        warnings: [],
      });
    }
    expect((await check(hyperliquidInput(simulator.url, { private_key: `0x${'0'.repeat(64)}` }))).error).toBe(
      'the private key is not a valid secp256k1 private key',
    );
    expect((await check(hyperliquidInput(simulator.url, { private_key: VECTOR_KEY, wallet_address: VECTOR_ADDRESS.slice(0, -1) }))).error).toBe(
      'the wallet address must be 0x followed by 40 hexadecimal characters',
    );
    expect(simulator.requests.length).toBe(seen);
  });

  it('gives up on an exchange that never answers after the timeout', async () => {
    const hanging = await startHyperliquidSimulator({ accounts: [], hang: true });
    try {
      expect(await check(hyperliquidInput(hanging.url, { private_key: VECTOR_KEY }, { timeoutMs: 1_500 }))).toEqual({
        ok: false,
        error: 'the exchange did not answer within 1.5 s',
        warnings: [],
      });
    } finally {
      await hanging.close();
    }
  });

  it('says an exchange on a closed port cannot be reached', async () => {
    expect((await check(hyperliquidInput(await closedPortUrl(), { private_key: VECTOR_KEY }))).error).toBe('the exchange could not be reached');
  });
});

describe('error messages', () => {
  const ccxt = loadCcxt();
  const describeError = (error: unknown) =>
    describeExchangeError(ccxt, error, { timeoutMs: 10_000, credentialCodes: new Set([-1022, -2014, -2015]) });
  /** How ccxt words a Binance error: the exchange id, then the body. */
  const binanceBody = (code: number, msg: string) => `binance ${JSON.stringify({ code, msg })}`;
  const systemError = (code: string) => Object.assign(new Error(`failed: ${code}`), { code });

  it("map ccxt's classes, subclasses first, to fixed messages", () => {
    const cases: [Error, string][] = [
      [new ccxt.PermissionDenied('x'), 'the API key lacks a permission the check needs'],
      [new ccxt.AccountSuspended('x'), 'the exchange rejected the credentials'],
      [new ccxt.RequestTimeout('x'), 'the exchange did not answer within 10 s'],
      [new ccxt.RateLimitExceeded('x'), 'the exchange is rate limiting us; try again later'],
      [new ccxt.DDoSProtection('x'), 'the exchange is rate limiting us; try again later'],
      [new ccxt.ExchangeNotAvailable('x'), 'the exchange could not be reached'],
      [new ccxt.OnMaintenance('x'), 'the exchange could not be reached'],
      [new ccxt.NetworkError('x'), 'the exchange could not be reached'],
      [new ccxt.InvalidNonce(binanceBody(-1021, 'Timestamp outside of the recvWindow.')), "the exchange rejected the request's timestamp; check this server's clock"],
      [new ccxt.BadRequest(binanceBody(-1100, "Illegal characters found in parameter 'x'")), 'the exchange returned an error (code -1100)'],
      [new ccxt.BadResponse('hyperliquid something odd'), 'the exchange returned an error'],
    ];
    for (const [error, message] of cases) expect(describeError(error)).toBe(message);
  });

  it("read Binance's credential codes as rejected credentials whatever class ccxt chose", () => {
    // ccxt throws -2015 as DDoSProtection once a signed call of the instance succeeded, and -1022 as BadRequest on some hosts.
    const rejected = 'the exchange rejected the credentials';
    expect(describeError(new ccxt.DDoSProtection(binanceBody(-2015, 'Invalid API-key, IP, or permissions for action.')))).toBe(rejected);
    expect(describeError(new ccxt.BadRequest(binanceBody(-1022, 'Signature for this request is not valid.')))).toBe(rejected);
  });

  it('treat transport errors as unreachable, and leave anything else (a bug) undescribed', () => {
    expect(describeError(systemError('EHOSTUNREACH'))).toBe('the exchange could not be reached');
    expect(describeError(systemError('DEPTH_ZERO_SELF_SIGNED_CERT'))).toBe('the exchange could not be reached');
    expect(describeError(systemError('ERR_INVALID_ARG_TYPE'))).toBeNull();
    expect(describeError(new TypeError('a bug'))).toBeNull();
  });

  it('are scrubbed of every input value, plain, URL-encoded, and hex in any case with or without 0x', () => {
    const values = { api_secret: 'a+b/c=d&e', private_key: '0xABCDEF0123456789', short: 'abc' };
    expect(scrubSecrets('x a+b/c=d&e a%2Bb%2Fc%3Dd%26e 0xabcdef0123456789 ABCDEF0123456789 abc', values)).toBe(
      'x [redacted] [redacted] [redacted] [redacted] abc',
    );
  });
});
