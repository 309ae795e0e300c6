import { createHash, generateKeyPairSync } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from '@jest/globals';
import { binanceProfile } from '../src/exchanges/binance.connector';
import { prepareCheck, unexpectedStatus } from '../src/exchanges/ccxt.connector';
import { defaultCcxtCredential } from '../src/exchanges/credentials';
import { describeExchangeError, scrubSecrets } from '../src/exchanges/failures';
import { KRAKEN_MATCHERS } from '../src/exchanges/kraken.connector';
import { nonZeroBalances } from '../src/exchanges/findings';
import {
  classifyAddress,
  createOutboundGuard,
  ORIGIN_REFUSED,
  REDIRECT_REFUSED,
} from '../src/exchanges/guard';
import { loadCcxt, pointAtBaseUrl, rebaseUrl, resolveBaseUrl } from '../src/exchanges/hosts';
import { checkConnection } from '../src/exchanges/registry';
import type { ConnectionCheckInput, ConnectionCheckResult, Resolver } from '../src/exchanges/types';
import { startBinanceSimulator, type BinanceSimulator } from './simulators/binance.simulator';
import { startBybitSimulator, type BybitSimulator } from './simulators/bybit.simulator';
import { startCoinbaseSimulator } from './simulators/coinbase.simulator';
import {
  startHyperliquidSimulator,
  type HyperliquidSimulator,
} from './simulators/hyperliquid.simulator';
import { startKrakenSimulator, type KrakenSimulator } from './simulators/kraken.simulator';
import { startOkxSimulator } from './simulators/okx.simulator';
import type { Simulator } from './simulators/recording-server';

/** 64 characters, like Binance's keys and secrets. */
const fake = (label: string) => createHash('sha256').update(label).digest('hex');
const binanceKey = (name: string) => ({
  api_key: fake(`${name} key`),
  api_secret: fake(`${name} secret`),
});
const KEYS = {
  good: binanceKey('good'),
  withdrawing: binanceKey('withdrawing'),
  open: binanceKey('open'),
  unknown: binanceKey('unknown'),
};
const WRONG_SECRET = fake('wrong secret');

// Well-known secp256k1 vectors: private key -> Ethereum address.
const VECTOR_KEY = '0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318';
const VECTOR_ADDRESS = '0x2c7536E3605D9C16a7a3D7b1898e529396a65c23';
const KEY_ONE = `0x${'0'.repeat(63)}1`;
const KEY_ONE_ADDRESS = '0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf';
const KEY_TWO = `0x${'0'.repeat(63)}2`;
const KEY_TWO_ADDRESS = '0x2B5AD5c4795c026514f8317c7a215E218DcCD6cF';
const KEY_THREE = `0x${'0'.repeat(63)}3`;
const KEY_THREE_ADDRESS = '0x6813Eb9362372EEF6200f3b1dbC3f819671cBA69';
const OWNER = `0x${'ab'.repeat(20)}`;
const SUB_ACCOUNT = `0x${'cd'.repeat(20)}`;
const VAULT = `0x${'ef'.repeat(20)}`;

/** A check input; each value's field is the ccxt credential its key names by default. */
function input(
  ccxtId: string | null,
  baseUrl: string | null,
  values: Record<string, string>,
  extra: Partial<ConnectionCheckInput> = {},
): ConnectionCheckInput {
  return {
    ccxtId,
    environment: 'mainnet',
    baseUrl,
    values,
    fields: Object.keys(values).map((key) => ({ key, ccxtCredential: defaultCcxtCredential(key) })),
    timeoutMs: 5_000,
    allowWithdrawalKeys: false,
    requireIpRestrictedKeys: false,
    egressAddresses: [],
    network: { allowLoopback: true },
    ...extra,
  };
}

/** Every check goes through here: no input value may appear anywhere in the result. */
async function check(given: ConnectionCheckInput): Promise<ConnectionCheckResult> {
  const result = await checkConnection(given);
  const serialised = JSON.stringify(result);
  // Values under 4 characters are not secrets (and are not scrubbed either: see scrubSecrets).
  for (const value of Object.values(given.values).filter((v) => v.length >= 4)) {
    expect(serialised).not.toContain(value);
    expect(serialised.toLowerCase()).not.toContain(value.toLowerCase().replace(/^0x/, ''));
  }
  return result;
}

const failed = (kind: string, error: string) => ({
  ok: false,
  kind,
  error,
  warnings: [],
  balances: [],
  permissions: null,
});
const paths = (simulator: { requests: { path: string }[] }, since = 0) =>
  simulator.requests.slice(since).map((request) => request.path.split('?')[0]);

async function closedPortUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

describe('checkConnection', () => {
  it('has nothing to test without a ccxt exchange, or for one ccxt does not know, and says so without throwing', async () => {
    expect(await check(input(null, 'https://example.com', {}))).toEqual(
      failed(
        'untestable',
        'no connection test exists for this exchange: its definition names no ccxt exchange',
      ),
    );
    expect(await check(input('nosuchexchange', 'https://example.com', {}))).toEqual(
      failed(
        'untestable',
        'no connection test exists for this exchange: ccxt has no exchange "nosuchexchange"',
      ),
    );
  });

  it("says plainly that a public balance look-up by address can't prove a key", async () => {
    for (const id of ['dydx', 'derive', 'lighter', 'nado', 'pacifica']) {
      const result = await check(input(id, 'https://example.com', { private_key: VECTOR_KEY }));
      expect(result).toEqual(
        failed(
          'untestable',
          `a connection test can't prove a ${id} key: the exchange's balance look-up is public, by address, and proves nothing about the key`,
        ),
      );
    }
  });

  it('fails when no URL is configured for the environment', async () => {
    expect(await check(input('binance', null, KEYS.good, { environment: 'testnet' }))).toEqual(
      failed('untestable', 'no testnet URL is configured for this exchange'),
    );
    expect((await check(input('hyperliquid', null, { private_key: VECTOR_KEY }))).error).toBe(
      'no mainnet URL is configured for this exchange',
    );
  });

  it('refuses base URLs that are not http(s), or that carry user info', async () => {
    expect((await check(input('binance', 'not a url', KEYS.good))).error).toBe(
      'the configured base URL is not a valid URL',
    );
    expect((await check(input('binance', 'ftp://127.0.0.1/', KEYS.good))).error).toBe(
      'the configured base URL must use https',
    );
    expect(
      (await check(input('binance', 'https://user:pass@api.binance.com', KEYS.good))).error,
    ).toMatch(/must not contain a user name/);
  });

  it('says which value is missing, or that the definition has no field for a credential ccxt needs', async () => {
    expect(
      await check(
        input('okx', 'https://www.okx.com', {
          api_key: 'k'.repeat(20),
          api_secret: 's'.repeat(20),
          passphrase: '',
        }),
      ),
    ).toEqual(failed('rejected', 'the credential has no passphrase'));
    expect(
      await check(
        input('okx', 'https://www.okx.com', {
          api_key: 'k'.repeat(20),
          api_secret: 's'.repeat(20),
        }),
      ),
    ).toEqual(
      failed(
        'untestable',
        "this exchange's definition has no field for ccxt's password (the API passphrase)",
      ),
    );
  });

  it('throws only for a bug before any answer, and scrubs the input values from what it throws', async () => {
    const simulator = await startBinanceSimulator({
      accounts: [{ apiKey: KEYS.good.api_key, secret: KEYS.good.api_secret }],
    });
    const bug = jest.spyOn(loadCcxt().binance.prototype, 'sign').mockImplementation(() => {
      throw new TypeError(`cannot read ${KEYS.good.api_secret}`);
    });
    try {
      const thrown: unknown = await checkConnection(
        input('binance', simulator.url, KEYS.good),
      ).catch((error: unknown) => error);
      expect(thrown).toBeInstanceOf(Error);
      expect((thrown as Error).message).toBe(
        'the binance connection check failed unexpectedly: cannot read [redacted]',
      );
      expect((thrown as Error).stack).not.toContain(KEYS.good.api_secret);
      expect(simulator.requests).toHaveLength(0);
    } finally {
      bug.mockRestore();
      await simulator.close();
    }
  });

  it("fails as an unexpected answer on any other error once the exchange has answered, keeping only the error's class and the status", async () => {
    const simulator = await startBinanceSimulator({
      accounts: [{ apiKey: KEYS.good.api_key, secret: KEYS.good.api_secret }],
    });
    const broken = jest
      .spyOn(binanceProfile, 'permissions')
      .mockRejectedValue(new TypeError('cannot read INJECTED-TEXT'));
    try {
      const result = await check(input('binance', simulator.url, KEYS.good));
      expect(result).toEqual({
        ...failed('unreachable', 'the exchange returned an unexpected answer'),
        unreadable: { errorClass: 'TypeError', httpStatus: 200 },
      });
      expect(JSON.stringify(result)).not.toContain('INJECTED-TEXT');
    } finally {
      broken.mockRestore();
      await simulator.close();
    }
  });
});

describe('base URLs', () => {
  const allow = { allowLoopback: true };

  it("replace the origin and prefix the base URL's path", () => {
    expect(
      rebaseUrl('https://api.binance.com/api/v3', new URL('http://127.0.0.1:5555/proxy')),
    ).toBe('http://127.0.0.1:5555/proxy/api/v3');
    expect(rebaseUrl('https://api.binance.com/api/v3', new URL('https://gateway.example/'))).toBe(
      'https://gateway.example/api/v3',
    );
    expect(rebaseUrl('https://api.hyperliquid.xyz', new URL('http://localhost:8080'))).toBe(
      'http://localhost:8080',
    );
  });

  it('point every API URL of a ccxt instance at the base URL', () => {
    const ccxt = loadCcxt();
    for (const exchange of [
      new ccxt.binance(),
      new ccxt.hyperliquid(),
      new ccxt.okx(),
      new ccxt.bybit(),
    ]) {
      pointAtBaseUrl(exchange, new URL('http://127.0.0.1:5555/proxy'));
      const urls = JSON.stringify(exchange.urls.api).match(/"[a-z]+:\/\/[^"]*"/g) ?? [];
      expect(urls.length).toBeGreaterThan(0);
      for (const url of urls) expect(url).toMatch(/^"http:\/\/127\.0\.0\.1:5555\/proxy/);
    }
  });

  it('accept plain http for loopback hosts only', () => {
    for (const url of [
      'http://127.0.0.1:1',
      'http://127.8.9.10',
      'http://localhost:3000',
      'http://[::1]:80',
      'https://api.binance.com',
    ]) {
      expect(resolveBaseUrl({ baseUrl: url, environment: 'mainnet' }, allow)).toHaveProperty('url');
    }
    for (const url of [
      'http://api.binance.com',
      'http://10.0.0.1',
      'http://0.0.0.0:80',
      'http://[::ffff:127.0.0.1]',
    ]) {
      expect(resolveBaseUrl({ baseUrl: url, environment: 'mainnet' }, allow)).toEqual({
        error: 'plain http is only allowed for loopback hosts',
      });
    }
  });

  it('refuse https to a private, link-local, unique-local or metadata address, and loopback unless allowed', () => {
    const refused: Array<[string, string]> = [
      ['https://10.1.2.3', 'a private network address'],
      ['https://192.168.0.10:8443', 'a private network address'],
      ['https://169.254.169.254/latest', 'a cloud metadata address'],
      ['https://169.254.1.1', 'a link-local address'],
      ['https://[fe80::1]', 'a link-local address'],
      ['https://[fd00::1]', 'a unique-local (private) IPv6 address'],
      ['https://[fd00:ec2::254]', 'a cloud metadata address'],
      ['https://[::ffff:10.0.0.1]', 'a private network address'],
      ['https://0.0.0.0', 'a reserved, non-routable address'],
    ];
    for (const [url, what] of refused) {
      expect(resolveBaseUrl({ baseUrl: url, environment: 'mainnet' }, allow)).toEqual({
        error: `the exchange's address is ${what}: requests there are refused and nothing was sent`,
      });
    }
    expect(
      resolveBaseUrl(
        { baseUrl: 'https://127.0.0.1', environment: 'mainnet' },
        { allowLoopback: false },
      ),
    ).toEqual({
      error:
        "the exchange's address is a loopback address: requests there are refused and nothing was sent",
    });
    expect(
      resolveBaseUrl({ baseUrl: 'https://127.0.0.1', environment: 'mainnet' }, allow),
    ).toHaveProperty('url');
  });
});

describe('the outbound guard', () => {
  let simulator: BinanceSimulator;
  let port: string;
  beforeAll(async () => {
    simulator = await startBinanceSimulator({
      accounts: [{ apiKey: KEYS.good.api_key, secret: KEYS.good.api_secret }],
    });
    port = new URL(simulator.url).port;
  });
  afterAll(() => simulator.close());

  /** Answers every name with the given addresses, and records the names it was asked. */
  function resolverTo(...addresses: string[]): Resolver & { asked: string[] } {
    const asked: string[] = [];
    const resolve = (hostname: string) => {
      asked.push(hostname);
      return Promise.resolve(
        addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 })),
      );
    };
    return Object.assign(resolve, { asked });
  }

  it.each([
    ['10.20.30.40', 'a private network address'],
    ['169.254.169.254', 'a cloud metadata address'],
    ['fd00::1', 'a unique-local (private) IPv6 address'],
    ['fe80::1', 'a link-local address'],
    ['::ffff:192.168.1.1', 'a private network address'],
    ['64:ff9b::a9fe:a9fe', 'a cloud metadata address'],
  ])(
    'refuses a name that resolves to %s when it connects, and sends nothing',
    async (address, what) => {
      const resolve = resolverTo(address);
      const seen = simulator.requests.length;
      // localhost passes the URL check by its name; the address it resolves to is what counts.
      const result = await check(
        input('binance', `http://localhost:${port}`, KEYS.good, {
          network: { allowLoopback: true, resolve },
        }),
      );
      expect(result).toEqual(
        failed(
          'untestable',
          `the exchange's address is ${what}: requests there are refused and nothing was sent`,
        ),
      );
      expect(resolve.asked).toEqual(['localhost']);
      expect(simulator.requests.length).toBe(seen);
    },
  );

  it('refuses a name when any of its addresses is refused', async () => {
    const resolve = resolverTo('127.0.0.1', '10.0.0.1');
    const seen = simulator.requests.length;
    expect(
      (
        await check(
          input('binance', `http://localhost:${port}`, KEYS.good, {
            network: { allowLoopback: true, resolve },
          }),
        )
      ).error,
    ).toMatch(/private network address/);
    expect(simulator.requests.length).toBe(seen);
  });

  it('connects to the address its lookup answered: loopback only when EXCHANGE_ALLOW_LOOPBACK allows it', async () => {
    const seen = simulator.requests.length;
    const refused = await check(
      input('binance', `http://localhost:${port}`, KEYS.good, {
        network: { allowLoopback: false, resolve: resolverTo('127.0.0.1') },
      }),
    );
    expect(refused).toEqual(
      failed(
        'untestable',
        "the exchange's address is a loopback address: requests there are refused and nothing was sent",
      ),
    );
    expect(simulator.requests.length).toBe(seen);

    const resolve = resolverTo('127.0.0.1');
    expect(
      (
        await check(
          input('binance', `http://localhost:${port}`, KEYS.good, {
            network: { allowLoopback: true, resolve },
          }),
        )
      ).ok,
    ).toBe(true);
    expect(resolve.asked.length).toBeGreaterThan(0);
    expect(simulator.requests.length).toBeGreaterThan(seen);
  });

  it('refuses a loopback IP address without a lookup when loopback is not allowed', async () => {
    const seen = simulator.requests.length;
    expect(
      (
        await check(
          input('binance', simulator.url, KEYS.good, { network: { allowLoopback: false } }),
        )
      ).error,
    ).toMatch(/a loopback address/);
    expect(simulator.requests.length).toBe(seen);
  });

  it("refuses a URL outside the definition's origin (an exchange that builds URLs outside urls.api), and sends nothing", async () => {
    const elsewhere = await startBinanceSimulator({
      accounts: [{ apiKey: KEYS.good.api_key, secret: KEYS.good.api_secret }],
    });
    try {
      const prepared = prepareCheck(input('binance', simulator.url, KEYS.good));
      if ('failure' in prepared) throw new Error('not prepared');
      (prepared.exchange.urls.api as Record<string, string>).private = `${elsewhere.url}/api/v3`;
      await expect(prepared.exchange.fetchBalance()).rejects.toBeDefined();
      expect(prepared.guard.refusal).toBe(ORIGIN_REFUSED);
      await prepared.guard.close();
      expect(elsewhere.requests).toHaveLength(0);
    } finally {
      await elsewhere.close();
    }
  });

  it('refuses redirects, whose target would skip the origin check', async () => {
    const redirecting = createServer((_req, res) =>
      res.writeHead(302, { location: 'http://10.0.0.1/' }).end(),
    );
    await new Promise<void>((resolve) => redirecting.listen(0, '127.0.0.1', resolve));
    const guard = createOutboundGuard(
      `http://127.0.0.1:${(redirecting.address() as AddressInfo).port}`,
      { allowLoopback: true },
    );
    try {
      await expect(
        guard.fetch(`http://127.0.0.1:${(redirecting.address() as AddressInfo).port}/x`, {
          method: 'GET',
        }),
      ).rejects.toThrow(REDIRECT_REFUSED);
      expect(guard.refusal).toBe(REDIRECT_REFUSED);
    } finally {
      await guard.close();
      await new Promise<void>((resolve) => redirecting.close(() => resolve()));
    }
  });

  it('classifies addresses', () => {
    expect(classifyAddress('8.8.8.8')).toBeNull();
    expect(classifyAddress('2606:4700::1111')).toBeNull();
    expect(classifyAddress('100.64.0.1')).toBe('private');
    expect(classifyAddress('172.31.255.255')).toBe('private');
    expect(classifyAddress('172.32.0.1')).toBeNull();
    expect(classifyAddress('::1')).toBe('loopback');
    expect(classifyAddress('::ffff:127.0.0.1')).toBe('loopback');
    expect(classifyAddress('100.100.100.200')).toBe('metadata');
    expect(classifyAddress('224.0.0.1')).toBe('reserved');
    expect(classifyAddress('not an address')).toBe('reserved');
  });
});

describe('Binance', () => {
  let mainnet: BinanceSimulator;
  let testnet: BinanceSimulator;
  beforeAll(async () => {
    mainnet = await startBinanceSimulator({
      accounts: [
        {
          apiKey: KEYS.good.api_key,
          secret: KEYS.good.api_secret,
          enableWithdrawals: false,
          ipRestrict: true,
        },
        {
          apiKey: KEYS.withdrawing.api_key,
          secret: KEYS.withdrawing.api_secret,
          enableWithdrawals: true,
          ipRestrict: true,
        },
        {
          apiKey: KEYS.open.api_key,
          secret: KEYS.open.api_secret,
          enableWithdrawals: false,
          ipRestrict: false,
        },
      ],
    });
    testnet = await startBinanceSimulator({
      accounts: [{ apiKey: KEYS.good.api_key, secret: KEYS.good.api_secret }],
      testnet: true,
    });
  });
  afterAll(async () => {
    await mainnet.close();
    await testnet.close();
  });

  it('passes a valid key with its balances and permissions: a signed account request, then its API restrictions', async () => {
    const seen = mainnet.requests.length;
    expect(await check(input('binance', mainnet.url, KEYS.good))).toEqual({
      ok: true,
      kind: 'ok',
      warnings: [],
      balances: [
        { asset: 'BTC', free: 0.5, used: 0, total: 0.5 },
        { asset: 'USDT', free: 1000, used: 25, total: 1025 },
      ],
      permissions: { read: true, trade: true, withdraw: false, ipRestricted: true },
    });
    const requests = mainnet.requests.slice(seen);
    expect(paths(mainnet, seen)).toEqual(['/api/v3/account', '/sapi/v1/account/apiRestrictions']);
    for (const request of requests) {
      expect(request.headers['x-mbx-apikey']).toBe(KEYS.good.api_key);
      expect(request.path).toMatch(/[?&]timestamp=\d+.*&signature=[0-9a-f]{64}$/);
    }
  });

  it('rejects a wrong secret', async () => {
    expect(
      await check(input('binance', mainnet.url, { ...KEYS.good, api_secret: WRONG_SECRET })),
    ).toEqual(failed('rejected', 'the exchange rejected the credentials'));
  });

  it("rejects an unknown key, saying it may be this server's IP (-2015)", async () => {
    expect(await check(input('binance', mainnet.url, KEYS.unknown))).toEqual(
      failed(
        'rejected',
        "the exchange rejected the key, or this server's IP address is not on the key's allow-list",
      ),
    );
  });

  it('says which value is missing', async () => {
    expect(
      (await check(input('binance', mainnet.url, { api_key: KEYS.good.api_key, api_secret: '' })))
        .error,
    ).toBe('the credential has no api_secret');
  });

  it('fails a key that can withdraw funds, and says what it may do', async () => {
    const result = await check(input('binance', mainnet.url, KEYS.withdrawing));
    expect(result).toMatchObject({
      ok: false,
      kind: 'rejected',
      balances: [],
      permissions: { withdraw: true },
    });
    expect(result.error).toMatch(/can withdraw funds and must not/);
  });

  it('passes a key that can withdraw funds, with a warning, when the platform allows such keys', async () => {
    expect(
      await check(input('binance', mainnet.url, KEYS.withdrawing, { allowWithdrawalKeys: true })),
    ).toMatchObject({ ok: true, warnings: ['this API key can withdraw funds'] });
  });

  it('warns about a key not restricted to trusted IPs', async () => {
    expect(await check(input('binance', mainnet.url, KEYS.open))).toMatchObject({
      ok: true,
      warnings: ['this API key is not restricted to trusted IP addresses'],
    });
  });

  it('on testnet, uses the testnet URL and skips the API restrictions (the testnet has no /sapi)', async () => {
    const seenMainnet = mainnet.requests.length;
    const seenTestnet = testnet.requests.length;
    expect(
      await check(input('binance', testnet.url, KEYS.good, { environment: 'testnet' })),
    ).toMatchObject({ ok: true, warnings: [], permissions: null });
    expect(paths(testnet, seenTestnet)).toEqual(['/api/v3/account']);
    expect(mainnet.requests.length).toBe(seenMainnet);
  });

  it('corrects a clock off by more than the receive window once (ccxt time difference), then passes', async () => {
    const skewed = await startBinanceSimulator({
      accounts: [{ apiKey: KEYS.good.api_key, secret: KEYS.good.api_secret }],
      clockOffsetMs: -60_000,
    });
    try {
      expect((await check(input('binance', skewed.url, KEYS.good))).ok).toBe(true);
      expect(paths(skewed)).toEqual([
        '/api/v3/account',
        '/api/v3/time',
        '/api/v3/account',
        '/sapi/v1/account/apiRestrictions',
      ]);
    } finally {
      await skewed.close();
    }
  });

  it.each([
    ['RSA', () => generateKeyPairSync('rsa', { modulusLength: 2048 })],
    ['Ed25519', () => generateKeyPairSync('ed25519')],
  ])('signs and tests an %s key (a PEM secret)', async (_kind, generate) => {
    const { privateKey, publicKey } = generate();
    const secret = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString().trim();
    const apiKey = fake(`${_kind} key`);
    const simulator = await startBinanceSimulator({
      accounts: [
        { apiKey, secret, publicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString() },
      ],
    });
    try {
      expect(
        await check(input('binance', simulator.url, { api_key: apiKey, api_secret: secret })),
      ).toMatchObject({ ok: true, kind: 'ok' });
      const other = generate()
        .privateKey.export({ type: 'pkcs8', format: 'pem' })
        .toString()
        .trim();
      expect(
        await check(input('binance', simulator.url, { api_key: apiKey, api_secret: other })),
      ).toEqual(failed('rejected', 'the exchange rejected the credentials'));
    } finally {
      await simulator.close();
    }
  });

  it('tests any other exchange of the family by its signed balance alone, with a warning that it does not say whether the key can withdraw', async () => {
    // Binance US speaks Binance's API; no permission endpoint is read for it.
    const seen = mainnet.requests.length;
    expect(await check(input('binanceus', mainnet.url, KEYS.good))).toMatchObject({
      ok: true,
      kind: 'ok',
      warnings: ['this exchange does not say whether the key can withdraw'],
      permissions: null,
      balances: [{ asset: 'BTC' }, { asset: 'USDT' }],
    });
    expect(paths(mainnet, seen)).toEqual(['/api/v3/account']);
  });

  it("keeps the base URL's path", async () => {
    const proxied = await startBinanceSimulator({
      accounts: [{ apiKey: KEYS.good.api_key, secret: KEYS.good.api_secret }],
      pathPrefix: '/proxy',
    });
    try {
      expect((await check(input('binance', `${proxied.url}/proxy/`, KEYS.good))).ok).toBe(true);
      expect(paths(proxied)).toEqual([
        '/proxy/api/v3/account',
        '/proxy/sapi/v1/account/apiRestrictions',
      ]);
    } finally {
      await proxied.close();
    }
  });

  it('says an exchange on a closed port cannot be reached', async () => {
    expect(await check(input('binance', await closedPortUrl(), KEYS.good))).toEqual(
      failed('unreachable', 'the exchange could not be reached'),
    );
  });

  it('gives up on an exchange that never answers after the timeout', async () => {
    const hanging = await startBinanceSimulator({ accounts: [], hang: true });
    try {
      const started = Date.now();
      const result = await check(input('binance', hanging.url, KEYS.good, { timeoutMs: 1_500 }));
      expect(result).toEqual(failed('unreachable', 'the exchange did not answer within 1.5 s'));
      expect(Date.now() - started).toBeLessThan(4_000);
      expect(hanging.requests).toHaveLength(1);
    } finally {
      await hanging.close();
    }
  });

  it('never passes on text from the exchange, even when it echoes the secret', async () => {
    const echoing = await startBinanceSimulator({
      accounts: [{ apiKey: KEYS.good.api_key, secret: KEYS.good.api_secret }],
      echoSecretInErrors: true,
    });
    try {
      const badlySigned = `${echoing.url}/api/v3/account?timestamp=${Date.now()}&signature=00`;
      const answer = await fetch(badlySigned, { headers: { 'X-MBX-APIKEY': KEYS.good.api_key } });
      expect(await answer.text()).toContain(KEYS.good.api_secret); // the simulator does leak it
      const result = await check(
        input('binance', echoing.url, { ...KEYS.good, api_secret: WRONG_SECRET }),
      );
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
    expect(await check(input('binance', `http://0.0.0.0:${port}`, KEYS.good))).toEqual(
      failed('untestable', 'plain http is only allowed for loopback hosts'),
    );
    expect(mainnet.requests.length).toBe(seen);
  });
});

describe('OKX', () => {
  const good = {
    api_key: fake('okx key').slice(0, 36),
    api_secret: fake('okx secret').slice(0, 32).toUpperCase(),
    passphrase: 'correct horse 42',
  };
  const withdrawing = {
    api_key: fake('okx withdrawing key').slice(0, 36),
    api_secret: fake('okx withdrawing secret').slice(0, 32),
    passphrase: 'another passphrase',
  };
  const demo = {
    api_key: fake('okx demo key').slice(0, 36),
    api_secret: fake('okx demo secret').slice(0, 32),
    passphrase: 'demo passphrase',
  };
  let okx: Simulator;
  beforeAll(async () => {
    okx = await startOkxSimulator({
      accounts: [
        {
          apiKey: good.api_key,
          secret: good.api_secret,
          passphrase: good.passphrase,
          ip: '203.0.113.7',
        },
        {
          apiKey: withdrawing.api_key,
          secret: withdrawing.api_secret,
          passphrase: withdrawing.passphrase,
          perm: 'read_only,trade,withdraw',
          ip: '203.0.113.7',
        },
        { apiKey: demo.api_key, secret: demo.api_secret, passphrase: demo.passphrase, demo: true },
      ],
    });
  });
  afterAll(() => okx.close());

  it('passes a good key with its balances and permissions, signed as OKX documents', async () => {
    const seen = okx.requests.length;
    expect(await check(input('okx', okx.url, good))).toEqual({
      ok: true,
      kind: 'ok',
      warnings: [],
      balances: [
        { asset: 'BTC', free: 0.25, used: 0, total: 0.25 },
        { asset: 'USDT', free: 1000, used: 200, total: 1200 },
      ],
      permissions: { read: true, trade: true, withdraw: false, ipRestricted: true },
    });
    expect(paths(okx, seen)).toEqual(['/api/v5/account/balance', '/api/v5/account/config']);
    expect(okx.requests[seen].headers['ok-access-passphrase']).toBe(good.passphrase);
  });

  it('fails a wrong secret, a wrong passphrase and an unknown key, each with its message', async () => {
    expect(
      await check(input('okx', okx.url, { ...good, api_secret: fake('other').slice(0, 32) })),
    ).toEqual(failed('rejected', 'the exchange rejected the credentials'));
    expect(await check(input('okx', okx.url, { ...good, passphrase: 'wrong horse 42' }))).toEqual(
      failed('rejected', 'the exchange rejected the passphrase'),
    );
    expect(
      await check(input('okx', okx.url, { ...good, api_key: fake('nobody').slice(0, 36) })),
    ).toEqual(failed('rejected', 'the exchange does not know this key'));
  });

  it('fails a key that can withdraw', async () => {
    expect(await check(input('okx', okx.url, withdrawing))).toMatchObject({
      ok: false,
      kind: 'rejected',
      error: 'this API key can withdraw funds and must not: create a key with withdrawals disabled',
      permissions: { withdraw: true },
    });
  });

  it('tests a demo-trading key in sandbox mode (its header), and says a live key is for the other environment', async () => {
    expect(await check(input('okx', okx.url, demo, { environment: 'testnet' }))).toMatchObject({
      ok: true,
      kind: 'ok',
    });
    expect(okx.requests.at(-1)!.headers['x-simulated-trading']).toBe('1');
    expect((await check(input('okx', okx.url, good, { environment: 'testnet' }))).error).toMatch(
      /for the other environment/,
    );
  });
});

describe('Kraken', () => {
  const secret = (label: string) =>
    Buffer.from(fake(label) + fake(`${label} 2`), 'hex').toString('base64');
  const good = {
    api_key: Buffer.from(fake('kraken key'), 'hex').toString('base64'),
    api_secret: secret('kraken secret'),
  };
  const withdrawing = {
    api_key: Buffer.from(fake('kraken withdrawing'), 'hex').toString('base64'),
    api_secret: secret('kraken withdrawing secret'),
  };
  let kraken: KrakenSimulator;
  beforeAll(async () => {
    kraken = await startKrakenSimulator({
      accounts: [
        { apiKey: good.api_key, secret: good.api_secret, ipAllowlist: ['203.0.113.7'] },
        {
          apiKey: withdrawing.api_key,
          secret: withdrawing.api_secret,
          permissions: ['query-funds', 'withdraw-funds'],
        },
      ],
    });
  });
  afterAll(() => kraken.close());

  it("passes a good key with its balances (in Kraken's asset names made plain) and permissions", async () => {
    const seen = kraken.requests.length;
    expect(await check(input('kraken', kraken.url, good))).toEqual({
      ok: true,
      kind: 'ok',
      warnings: [],
      balances: [
        { asset: 'BTC', free: 1.2435 - 0.8423, used: 0.8423, total: 1.2435 },
        { asset: 'USD', free: 25435.21, used: 0, total: 25435.21 },
      ],
      permissions: { read: true, trade: true, withdraw: false, ipRestricted: true },
    });
    expect(paths(kraken, seen)).toEqual(['/0/private/BalanceEx', '/0/private/GetApiKeyInfo']);
  });

  it('signs every request with a nonce above the last, so tests can follow each other', async () => {
    for (let i = 0; i < 3; i++)
      expect((await check(input('kraken', kraken.url, good))).ok).toBe(true);
  });

  it('fails a wrong secret (which ccxt reads as a plain ExchangeError) and an unknown key', async () => {
    expect(
      await check(input('kraken', kraken.url, { ...good, api_secret: secret('other') })),
    ).toEqual(failed('rejected', 'the exchange rejected the credentials'));
    expect(
      await check(
        input('kraken', kraken.url, {
          ...good,
          api_key: Buffer.from(fake('nobody'), 'hex').toString('base64'),
        }),
      ),
    ).toEqual(failed('rejected', 'the exchange does not know this key'));
  });

  it('fails a key that can withdraw (withdraw-funds)', async () => {
    expect(await check(input('kraken', kraken.url, withdrawing))).toMatchObject({
      ok: false,
      kind: 'rejected',
      permissions: { withdraw: true, trade: false },
    });
  });
});

describe('Bybit', () => {
  const good = {
    api_key: fake('bybit key').slice(0, 18),
    api_secret: fake('bybit secret').slice(0, 36),
  };
  const withdrawing = {
    api_key: fake('bybit withdrawing key').slice(0, 18),
    api_secret: fake('bybit withdrawing secret').slice(0, 36),
  };
  let bybit: BybitSimulator;
  beforeAll(async () => {
    bybit = await startBybitSimulator({
      accounts: [
        { apiKey: good.api_key, secret: good.api_secret, ips: ['203.0.113.7'] },
        {
          apiKey: withdrawing.api_key,
          secret: withdrawing.api_secret,
          permissions: { Wallet: ['AccountTransfer', 'Withdraw'], Spot: ['SpotTrade'] },
        },
      ],
    });
  });
  afterAll(() => bybit.close());

  it('passes a good key with its balances and permissions (query-api)', async () => {
    const seen = bybit.requests.length;
    expect(await check(input('bybit', bybit.url, good))).toEqual({
      ok: true,
      kind: 'ok',
      warnings: [],
      balances: [
        { asset: 'BTC', free: 0.01, used: 0, total: 0.01 },
        { asset: 'USDT', free: 380, used: 120, total: 500 },
      ],
      permissions: { read: true, trade: true, withdraw: false, ipRestricted: true },
    });
    expect(paths(bybit, seen)).toEqual(
      expect.arrayContaining([
        '/v5/user/query-api',
        '/v5/account/info',
        '/v5/account/wallet-balance',
      ]),
    );
    expect(
      bybit.requests
        .slice(seen)
        .every((request) => request.headers['x-bapi-api-key'] === good.api_key),
    ).toBe(true);
  });

  it('fails a wrong secret and an unknown key, never passing on what Bybit echoes', async () => {
    expect(
      await check(input('bybit', bybit.url, { ...good, api_secret: fake('other').slice(0, 36) })),
    ).toEqual(failed('rejected', 'the exchange rejected the credentials'));
    expect(
      await check(input('bybit', bybit.url, { ...good, api_key: fake('nobody').slice(0, 18) })),
    ).toEqual(failed('rejected', 'the exchange does not know this key'));
  });

  it('fails a key that can withdraw, and warns about one without bound IPs when allowed', async () => {
    expect(await check(input('bybit', bybit.url, withdrawing))).toMatchObject({
      ok: false,
      kind: 'rejected',
      permissions: { withdraw: true },
    });
    expect(
      await check(input('bybit', bybit.url, withdrawing, { allowWithdrawalKeys: true })),
    ).toMatchObject({
      ok: true,
      warnings: [
        'this API key is not restricted to trusted IP addresses',
        'this API key can withdraw funds',
      ],
    });
  });
});

describe('Hyperliquid', () => {
  let simulator: HyperliquidSimulator;
  beforeAll(async () => {
    simulator = await startHyperliquidSimulator({
      accounts: [
        { address: VECTOR_ADDRESS, spot: [{ coin: 'HYPE', total: '12.5', hold: '2.5' }] },
        { address: OWNER, agents: [KEY_ONE_ADDRESS] },
        { address: KEY_THREE_ADDRESS },
        { address: SUB_ACCOUNT, role: 'subAccount', master: KEY_THREE_ADDRESS },
        { address: VAULT, role: 'vault', leader: OWNER },
      ],
    });
  });
  afterAll(() => simulator.close());

  const bodiesSince = (seen: number) =>
    simulator.requests.slice(seen).map((request) => request.body);

  it("proves an approved agent's key by a signed noop the exchange verifies, with the account's balances", async () => {
    const seen = simulator.requests.length;
    const seenSigners = simulator.signers.length;
    expect(
      await check(
        input('hyperliquid', simulator.url, {
          private_key: KEY_ONE,
          wallet_address: OWNER.toUpperCase().replace('0X', '0x'),
        }),
      ),
    ).toEqual({
      ok: true,
      kind: 'ok',
      warnings: [],
      balances: [{ asset: 'USDC', free: 1000, used: 0, total: 1000 }],
      permissions: {
        read: true,
        trade: true,
        withdraw: false,
        ipRestricted: null,
        // The simulator's default: the 90 days an API wallet lives unless its account says less.
        tradingExpiresAt: new Date(simulator.startedAt + 90 * 86_400_000),
      },
    });
    const bodies = bodiesSince(seen);
    expect(bodies.slice(0, 3)).toEqual([
      { type: 'userRole', user: OWNER },
      { type: 'userRole', user: KEY_ONE_ADDRESS.toLowerCase() },
      // When the agent's trading ends, from the account it signs for.
      { type: 'extraAgents', user: OWNER },
    ]);
    expect(bodies[3]).toMatchObject({
      action: { type: 'noop' },
      nonce: expect.any(Number),
      signature: { r: expect.any(String), s: expect.any(String), v: expect.any(Number) },
    });
    expect(simulator.requests[seen + 3].path).toBe('/exchange');
    expect(simulator.signers.slice(seenSigners)).toEqual([KEY_ONE_ADDRESS.toLowerCase()]);
    expect(JSON.stringify(bodies)).not.toMatch(/approveBuilderFee|setReferrer|order/);
  });

  it("fails the account's own key (it can withdraw), or passes it with a warning when the platform allows such keys", async () => {
    const own = await check(input('hyperliquid', simulator.url, { private_key: VECTOR_KEY }));
    expect(own).toMatchObject({ ok: false, kind: 'rejected', permissions: { withdraw: true } });
    expect(own.error).toMatch(/account's own private key, which can withdraw funds.*API wallet/);
    const allowed = await check(
      input(
        'hyperliquid',
        simulator.url,
        { private_key: VECTOR_KEY.slice(2), wallet_address: VECTOR_ADDRESS },
        { allowWithdrawalKeys: true },
      ),
    );
    expect(allowed).toMatchObject({
      ok: true,
      warnings: ["this is the account's own private key, which can withdraw funds"],
    });
    expect(allowed.balances).toEqual([
      { asset: 'HYPE', free: 10, used: 2.5, total: 12.5 },
      { asset: 'USDC', free: 1000, used: 0, total: 1000 },
    ]);
  });

  it("signs for a sub-account (by its master) and a vault (by its leader's agent) with the vault address", async () => {
    const seen = simulator.requests.length;
    expect(
      await check(
        input(
          'hyperliquid',
          simulator.url,
          { private_key: KEY_THREE, wallet_address: SUB_ACCOUNT },
          { allowWithdrawalKeys: true },
        ),
      ),
    ).toMatchObject({ ok: true });
    expect(
      await check(
        input('hyperliquid', simulator.url, { private_key: KEY_ONE, wallet_address: VAULT }),
      ),
    ).toMatchObject({ ok: true, permissions: { withdraw: false } });
    const noops = bodiesSince(seen).filter(
      (body) => typeof body === 'object' && body !== null && 'action' in body,
    );
    expect(noops.map((body) => (body as { vaultAddress?: string }).vaultAddress)).toEqual([
      SUB_ACCOUNT.slice(2),
      VAULT.slice(2),
    ]);
  });

  it('fails a key that is not an approved agent of the wallet_address', async () => {
    expect(
      await check(
        input('hyperliquid', simulator.url, { private_key: KEY_TWO, wallet_address: OWNER }),
      ),
    ).toEqual(failed('rejected', 'this key is not an approved agent of the account'));
    // An agent, but of another account.
    expect(
      (
        await check(
          input('hyperliquid', simulator.url, {
            private_key: KEY_ONE,
            wallet_address: VECTOR_ADDRESS,
          }),
        )
      ).error,
    ).toBe('this key is not an approved agent of the account');
  });

  it('says the exchange does not know a key whose signature it can not match to a signer (a mainnet signature on the testnet)', async () => {
    const testnet = await startHyperliquidSimulator({
      accounts: [{ address: OWNER, agents: [KEY_ONE_ADDRESS] }],
      testnet: true,
    });
    try {
      expect(
        await check(
          input('hyperliquid', testnet.url, { private_key: KEY_ONE, wallet_address: OWNER }),
        ),
      ).toEqual(failed('rejected', 'the exchange does not know this key'));
      // Sandbox mode signs as the testnet does.
      expect(
        await check(
          input(
            'hyperliquid',
            testnet.url,
            { private_key: KEY_ONE, wallet_address: OWNER },
            { environment: 'testnet' },
          ),
        ),
      ).toMatchObject({ ok: true });
      expect(testnet.signers).toHaveLength(2);
      expect(testnet.signers[1]).toBe(KEY_ONE_ADDRESS.toLowerCase());
      expect(testnet.signers[0]).not.toBe(KEY_ONE_ADDRESS.toLowerCase());
    } finally {
      await testnet.close();
    }
  });

  it('fails when no account exists for the address', async () => {
    const seen = simulator.requests.length;
    expect((await check(input('hyperliquid', simulator.url, { private_key: KEY_TWO }))).error).toBe(
      'no Hyperliquid account exists for this address',
    );
    expect(bodiesSince(seen)).toEqual([{ type: 'userRole', user: KEY_TWO_ADDRESS.toLowerCase() }]);
  });

  it("says an agent's key needs the account's wallet_address, and a wallet_address must be an account's", async () => {
    expect(
      (await check(input('hyperliquid', simulator.url, { private_key: KEY_ONE }))).error,
    ).toMatch(/set wallet_address/);
    expect(
      (
        await check(
          input('hyperliquid', simulator.url, {
            private_key: KEY_TWO,
            wallet_address: KEY_ONE_ADDRESS,
          }),
        )
      ).error,
    ).toMatch(/the wallet_address is an API wallet's/);
  });

  it('explains a malformed private key without echoing it, and sends nothing', async () => {
    const seen = simulator.requests.length;
    for (const privateKey of [VECTOR_KEY.slice(0, -2), `zz${VECTOR_KEY.slice(4)}`]) {
      expect(await check(input('hyperliquid', simulator.url, { private_key: privateKey }))).toEqual(
        failed(
          'rejected',
          'the private key must be 64 hexadecimal characters, optionally prefixed with 0x',
        ),
      );
    }
    expect(
      (await check(input('hyperliquid', simulator.url, { private_key: `0x${'0'.repeat(64)}` })))
        .error,
    ).toBe('the private key is not a valid secp256k1 private key');
    expect(
      (
        await check(
          input('hyperliquid', simulator.url, {
            private_key: VECTOR_KEY,
            wallet_address: VECTOR_ADDRESS.slice(0, -1),
          }),
        )
      ).error,
    ).toBe('the wallet address must be 0x followed by 40 hexadecimal characters');
    expect(simulator.requests.length).toBe(seen);
  });

  it('gives up on an exchange that never answers after the timeout', async () => {
    const hanging = await startHyperliquidSimulator({ accounts: [], hang: true });
    try {
      expect(
        await check(
          input('hyperliquid', hanging.url, { private_key: VECTOR_KEY }, { timeoutMs: 1_500 }),
        ),
      ).toEqual(failed('unreachable', 'the exchange did not answer within 1.5 s'));
    } finally {
      await hanging.close();
    }
  });

  it('says an exchange on a closed port cannot be reached', async () => {
    expect(
      (await check(input('hyperliquid', await closedPortUrl(), { private_key: VECTOR_KEY }))).error,
    ).toBe('the exchange could not be reached');
  });
});

describe('keys bound to no IP (EGRESS_IPS, REQUIRE_IP_RESTRICTED_KEYS)', () => {
  const EGRESS = ['203.0.113.10', '2001:db8::10'];
  const WHITELIST = 'whitelist 203.0.113.10, 2001:db8::10 on the key';
  const REFUSED =
    'this API key can trade and is not restricted to trusted IP addresses, which this service requires';
  const required = { requireIpRestrictedKeys: true, egressAddresses: EGRESS };
  const okx = {
    api_key: fake('okx open demo key').slice(0, 36),
    api_secret: fake('okx open demo secret').slice(0, 32),
    passphrase: 'open demo passphrase',
  };
  const krakenReadOnly = {
    api_key: Buffer.from(fake('kraken read-only open'), 'hex').toString('base64'),
    api_secret: Buffer.from(fake('kraken ro 1') + fake('kraken ro 2'), 'hex').toString('base64'),
  };
  const bybitWithdrawing = {
    api_key: fake('bybit open withdrawing key').slice(0, 18),
    api_secret: fake('bybit open withdrawing secret').slice(0, 36),
  };
  let binance: BinanceSimulator;
  let okxSimulator: Simulator;
  let kraken: KrakenSimulator;
  let bybit: BybitSimulator;
  let hyperliquid: HyperliquidSimulator;
  beforeAll(async () => {
    binance = await startBinanceSimulator({
      accounts: [
        { apiKey: KEYS.good.api_key, secret: KEYS.good.api_secret, ipRestrict: true },
        { apiKey: KEYS.open.api_key, secret: KEYS.open.api_secret, ipRestrict: false },
      ],
    });
    // A demo-trading (testnet) key that can trade and is bound to no IP (ip '').
    okxSimulator = await startOkxSimulator({
      accounts: [
        { apiKey: okx.api_key, secret: okx.api_secret, passphrase: okx.passphrase, demo: true },
      ],
    });
    kraken = await startKrakenSimulator({
      accounts: [
        {
          apiKey: krakenReadOnly.api_key,
          secret: krakenReadOnly.api_secret,
          permissions: ['query-funds'],
        },
      ],
    });
    bybit = await startBybitSimulator({
      accounts: [
        {
          apiKey: bybitWithdrawing.api_key,
          secret: bybitWithdrawing.api_secret,
          permissions: { Wallet: ['Withdraw'], Spot: ['SpotTrade'] },
        },
      ],
    });
    hyperliquid = await startHyperliquidSimulator({
      accounts: [{ address: OWNER, agents: [KEY_ONE_ADDRESS] }],
    });
  });
  afterAll(async () => {
    await Promise.all([binance, okxSimulator, kraken, bybit, hyperliquid].map((s) => s.close()));
  });

  it('names the addresses to whitelist in the warning for a key bound to no IP, and stays as before without them', async () => {
    expect(
      await check(input('binance', binance.url, KEYS.open, { egressAddresses: EGRESS })),
    ).toMatchObject({
      ok: true,
      warnings: [`this API key is not restricted to trusted IP addresses: ${WHITELIST}`],
    });
    expect(await check(input('binance', binance.url, KEYS.open))).toMatchObject({
      ok: true,
      warnings: ['this API key is not restricted to trusted IP addresses'],
    });
    expect(
      await check(input('binance', binance.url, KEYS.good, { egressAddresses: EGRESS })),
    ).toMatchObject({ ok: true, warnings: [] });
  });

  it('with REQUIRE_IP_RESTRICTED_KEYS, refuses a mainnet key that can trade and is bound to no IP, saying what to whitelist', async () => {
    expect(await check(input('binance', binance.url, KEYS.open, required))).toEqual({
      ok: false,
      kind: 'rejected',
      error: `${REFUSED}: ${WHITELIST}`,
      warnings: [],
      balances: [],
      permissions: { read: true, trade: true, withdraw: false, ipRestricted: false },
    });
    expect(
      (await check(input('binance', binance.url, KEYS.open, { requireIpRestrictedKeys: true })))
        .error,
    ).toBe(`${REFUSED}: bind it to the addresses this service calls exchanges from`);
  });

  it('with REQUIRE_IP_RESTRICTED_KEYS, passes a key bound to IPs as before', async () => {
    expect(await check(input('binance', binance.url, KEYS.good, required))).toMatchObject({
      ok: true,
      kind: 'ok',
      warnings: [],
      permissions: { trade: true, ipRestricted: true },
    });
  });

  it('with REQUIRE_IP_RESTRICTED_KEYS, passes a key whose exchange does not tell, with a warning that this could not be checked', async () => {
    const agentKey = { private_key: KEY_ONE, wallet_address: OWNER };
    expect(await check(input('hyperliquid', hyperliquid.url, agentKey, required))).toMatchObject({
      ok: true,
      kind: 'ok',
      warnings: [
        'this exchange does not say whether the key is restricted to trusted IP addresses: IP binding could not be checked',
      ],
      permissions: { trade: true, ipRestricted: null },
    });
    expect(await check(input('hyperliquid', hyperliquid.url, agentKey))).toMatchObject({
      ok: true,
      warnings: [],
    });
  });

  it('with REQUIRE_IP_RESTRICTED_KEYS, does not refuse a testnet key bound to no IP', async () => {
    expect(
      await check(input('okx', okxSimulator.url, okx, { ...required, environment: 'testnet' })),
    ).toMatchObject({
      ok: true,
      kind: 'ok',
      warnings: [],
      permissions: { trade: true, ipRestricted: false },
    });
  });

  it('with REQUIRE_IP_RESTRICTED_KEYS, only warns about a key that cannot trade', async () => {
    expect(await check(input('kraken', kraken.url, krakenReadOnly, required))).toMatchObject({
      ok: true,
      warnings: [`this API key is not restricted to trusted IP addresses: ${WHITELIST}`],
      permissions: { trade: false, withdraw: false, ipRestricted: false },
    });
  });

  it('says both reasons for a key that can withdraw and is bound to no IP, so one new key mends both', async () => {
    expect(await check(input('bybit', bybit.url, bybitWithdrawing, required))).toMatchObject({
      ok: false,
      kind: 'rejected',
      error: `this API key can withdraw funds and must not: create a key with withdrawals disabled; ${REFUSED}: ${WHITELIST}`,
      permissions: { trade: true, withdraw: true, ipRestricted: false },
    });
    expect(
      await check(
        input('bybit', bybit.url, bybitWithdrawing, { ...required, allowWithdrawalKeys: true }),
      ),
    ).toMatchObject({ ok: false, kind: 'rejected', error: `${REFUSED}: ${WHITELIST}` });
  });
});

describe('error messages', () => {
  const ccxt = loadCcxt();
  const describeError = (error: unknown) =>
    describeExchangeError(ccxt, error, { timeoutMs: 10_000, matchers: binanceProfile.matchers });
  /** How ccxt words a Binance error: the exchange id, then the body. */
  const binanceBody = (code: number, msg: string) => `binance ${JSON.stringify({ code, msg })}`;
  const systemError = (code: string) => Object.assign(new Error(`failed: ${code}`), { code });

  it("map ccxt's classes, subclasses first, to fixed messages and kinds", () => {
    const cases: [Error, string, string][] = [
      [
        new ccxt.PermissionDenied('x'),
        'rejected',
        'the API key lacks a permission the check needs',
      ],
      [new ccxt.AccountSuspended('x'), 'rejected', 'the exchange rejected the credentials'],
      [new ccxt.AccountNotEnabled('x'), 'rejected', 'the exchange rejected the credentials'],
      [new ccxt.RequestTimeout('x'), 'unreachable', 'the exchange did not answer within 10 s'],
      [
        new ccxt.RateLimitExceeded('x'),
        'unreachable',
        'the exchange is rate limiting us; try again later',
      ],
      [
        new ccxt.DDoSProtection('x'),
        'unreachable',
        'the exchange is rate limiting us; try again later',
      ],
      [new ccxt.ExchangeNotAvailable('x'), 'unreachable', 'the exchange could not be reached'],
      [new ccxt.OnMaintenance('x'), 'unreachable', 'the exchange could not be reached'],
      [new ccxt.NetworkError('x'), 'unreachable', 'the exchange could not be reached'],
      [
        new ccxt.InvalidNonce(binanceBody(-1021, 'Timestamp outside of the recvWindow.')),
        'unreachable',
        "the exchange rejected the request's timestamp; check this server's clock",
      ],
      [
        new ccxt.BadRequest(binanceBody(-1100, "Illegal characters found in parameter 'x'")),
        'unreachable',
        'the exchange returned an error (code -1100)',
      ],
      [
        new ccxt.BadResponse('hyperliquid something odd'),
        'unreachable',
        'the exchange returned an error',
      ],
    ];
    for (const [error, kind, message] of cases)
      expect(describeError(error)).toEqual({ kind, message });
  });

  it("read an exchange's own codes whatever class ccxt chose for them", () => {
    // ccxt throws -2015 as DDoSProtection once a signed call of the instance succeeded, and -1022
    // as BadRequest on some hosts.
    expect(
      describeError(
        new ccxt.DDoSProtection(
          binanceBody(-2015, 'Invalid API-key, IP, or permissions for action.'),
        ),
      )?.kind,
    ).toBe('rejected');
    expect(
      describeError(
        new ccxt.BadRequest(binanceBody(-1022, 'Signature for this request is not valid.')),
      ),
    ).toEqual({ kind: 'rejected', message: 'the exchange rejected the credentials' });
    // -12015 is another code, not -2015.
    expect(describeError(new ccxt.BadRequest(binanceBody(-12015, 'x')))?.message).toBe(
      'the exchange returned an error (code -12015)',
    );
    const kraken = (error: unknown) =>
      describeExchangeError(ccxt, error, { timeoutMs: 10_000, matchers: KRAKEN_MATCHERS });
    expect(kraken(new ccxt.ExchangeError('kraken {"error":["EAPI:Invalid signature"]}'))).toEqual({
      kind: 'rejected',
      message: 'the exchange rejected the credentials',
    });
    expect(
      kraken(new ccxt.InvalidNonce('kraken {"error":["EAPI:Invalid nonce"]}'))?.message,
    ).toMatch(/nonce: another client/);
  });

  it('treat transport errors as unreachable, and leave anything else (a bug) undescribed', () => {
    expect(describeError(systemError('EHOSTUNREACH'))).toEqual({
      kind: 'unreachable',
      message: 'the exchange could not be reached',
    });
    expect(describeError(systemError('DEPTH_ZERO_SELF_SIGNED_CERT'))?.kind).toBe('unreachable');
    expect(describeError(systemError('ERR_INVALID_ARG_TYPE'))).toBeNull();
    expect(describeError(new TypeError('a bug'))).toBeNull();
  });

  it('are scrubbed of every input value, plain, URL-encoded, and hex in any case with or without 0x', () => {
    const values = { api_secret: 'a+b/c=d&e', private_key: '0xABCDEF0123456789', short: 'abc' };
    expect(
      scrubSecrets('x a+b/c=d&e a%2Bb%2Fc%3Dd%26e 0xabcdef0123456789 ABCDEF0123456789 abc', values),
    ).toBe('x [redacted] [redacted] [redacted] [redacted] abc');
  });
});

describe('answers ccxt let through', () => {
  it('fail the test: a 401 refuses the key, any other failing status says nothing about it', () => {
    expect(unexpectedStatus([200, 200])).toBeNull();
    expect(unexpectedStatus([200, 401])).toEqual(
      failed('rejected', 'the exchange rejected the credentials'),
    );
    expect(unexpectedStatus([418])).toEqual(
      failed('unreachable', 'the exchange returned an unexpected answer'),
    );
  });
});

describe('balances', () => {
  it('keep non-zero, finite amounts by asset, at most 100, sorted', () => {
    const total: Record<string, number> = { ZERO: 0, NAN: Number.NaN, 'BAD CODE': 5 };
    for (let i = 0; i < 150; i++) total[`A${String(i).padStart(3, '0')}`] = i + 1;
    const balances = nonZeroBalances({ total, free: {}, used: {} });
    expect(balances).toHaveLength(100);
    expect(balances[0]).toEqual({ asset: 'A000', free: 0, used: 0, total: 1 });
    expect(balances.map((b) => b.asset)).not.toContain('ZERO');
    expect(nonZeroBalances({ total: { X: 'not a number' } })).toEqual([]);
    expect(nonZeroBalances(null)).toEqual([]);
  });
});

describe('Coinbase', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pem = privateKey.export({ type: 'sec1', format: 'pem' }).toString().trim();
  const name =
    'organizations/1f4c7ad0-0000-4000-8000-000000000001/apiKeys/7e2b9c10-0000-4000-8000-000000000002';
  const transferring =
    'organizations/1f4c7ad0-0000-4000-8000-000000000001/apiKeys/7e2b9c10-0000-4000-8000-000000000003';
  let coinbase: Simulator;
  beforeAll(async () => {
    const spki = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    coinbase = await startCoinbaseSimulator({
      accounts: [
        { apiKey: name, publicKey: spki },
        { apiKey: transferring, publicKey: spki, canTransfer: true },
      ],
    });
  });
  afterAll(() => coinbase.close());

  it('passes a CDP key (a JWT signed with its EC key) with its balances and permissions', async () => {
    const seen = coinbase.requests.length;
    expect(
      await check(input('coinbase', coinbase.url, { api_key: name, api_secret: pem })),
    ).toEqual({
      ok: true,
      kind: 'ok',
      warnings: [],
      balances: [
        { asset: 'BTC', free: 0.4, used: 0, total: 0.4 },
        { asset: 'USD', free: 250, used: 0, total: 250 },
      ],
      permissions: { read: true, trade: true, withdraw: false, ipRestricted: null },
    });
    expect(paths(coinbase, seen)).toEqual(['/v2/accounts', '/api/v3/brokerage/key_permissions']);
  });

  it('fails a key whose JWT Coinbase refuses (HTTP 401), and one that can transfer funds out', async () => {
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' })
      .privateKey.export({ type: 'sec1', format: 'pem' })
      .toString()
      .trim();
    expect(
      await check(input('coinbase', coinbase.url, { api_key: name, api_secret: other })),
    ).toEqual(failed('rejected', 'the exchange rejected the credentials'));
    expect(
      await check(input('coinbase', coinbase.url, { api_key: transferring, api_secret: pem })),
    ).toMatchObject({ ok: false, kind: 'rejected', permissions: { withdraw: true } });
  });
});
