import { createHmac, createPublicKey, timingSafeEqual, verify } from 'node:crypto';
import {
  startRecordingServer,
  type RecordedRequest,
  type Simulator,
  type SimulatorReply,
} from './recording-server';

export type { RecordedRequest, Simulator, SimulatorReply } from './recording-server';
export { startRecordingServer } from './recording-server';

// ---- Binance ----

export interface BinanceAccount {
  apiKey: string;
  /**
   * The HMAC secret; for an RSA or Ed25519 key, its private key PEM (the simulator checks with the
   * public key).
   */
  secret: string;
  /**
   * RSA or Ed25519 keys: the public key PEM the exchange was given; signatures are checked with it.
   */
  publicKey?: string;
  /** Default: BTC 0.5, USDT 1000 (25 locked). */
  balances?: Array<{ asset: string; free: string; locked: string }>;
  /** Default false. */
  enableWithdrawals?: boolean;
  /** Default true: a well-configured key passes without warnings. */
  ipRestrict?: boolean;
  /**
   * apiRestrictions' tradingAuthorityExpirationTime (ms), which Binance sends for keys whose trading
   * rights end; default none.
   */
  tradingAuthorityExpirationTime?: number;
}

export interface BinanceSimulatorOptions {
  accounts: BinanceAccount[];
  /** Accept connections and requests, never answer. */
  hang?: boolean;
  /** Error messages include the secret the simulator expected, as a careless proxy might. */
  echoSecretInErrors?: boolean;
  /** Like Binance's spot testnet: no /sapi endpoints. */
  testnet?: boolean;
  /** Serve under this path (e.g. '/proxy'), as a base URL with a path would. */
  pathPrefix?: string;
  /**
   * The exchange's clock minus ours, in ms: a request stamped by our clock falls outside its
   * window.
   */
  clockOffsetMs?: number;
  /** How long to take over an answer, per request; default at once. */
  delayMs?: (request: RecordedRequest) => number;
}

export type BinanceSimulator = Simulator;

const RECV_WINDOW_DEFAULT_MS = 5_000;

/**
 * A Binance spot API that knows the given keys: signed `GET /api/v3/account` and `GET
 * /sapi/v1/account/apiRestrictions`.
 */
export function startBinanceSimulator(options: BinanceSimulatorOptions): Promise<BinanceSimulator> {
  const prefix = (options.pathPrefix ?? '').replace(/\/+$/, '');
  return startRecordingServer(options, (request) => {
    const url = new URL(request.path, 'http://simulator');
    const route = url.pathname.startsWith(prefix) ? url.pathname.slice(prefix.length) : null;
    if (request.method === 'GET' && route === '/api/v3/time')
      return { status: 200, json: { serverTime: Date.now() + (options.clockOffsetMs ?? 0) } };
    const served =
      route === '/api/v3/account' ||
      (route === '/sapi/v1/account/apiRestrictions' && !options.testnet);
    if (request.method !== 'GET' || !served) {
      return { status: 404, text: '<html><body><h1>404 Not Found</h1></body></html>' };
    }
    const signed = verifySigned(request, url.search.slice(1), options);
    if ('error' in signed) return signed.error;
    const json =
      route === '/api/v3/account'
        ? accountJson(signed.account, options.accounts.indexOf(signed.account))
        : apiRestrictionsJson(signed.account);
    return { status: 200, json };
  });
}

function binanceError(status: number, code: number, msg: string): SimulatorReply {
  return { status, json: { code, msg } };
}

/**
 * Binance's order of checks: the key, then the mandatory parameters, the time window, the
 * signature.
 */
function verifySigned(
  request: RecordedRequest,
  query: string,
  options: BinanceSimulatorOptions,
): { account: BinanceAccount } | { error: SimulatorReply } {
  const apiKey = request.headers['x-mbx-apikey'];
  if (typeof apiKey !== 'string' || apiKey === '')
    return { error: binanceError(401, -2014, 'API-key format invalid.') };
  const account = options.accounts.find((candidate) => candidate.apiKey === apiKey);
  const echo = (msg: string, secret: string) =>
    options.echoSecretInErrors ? `${msg} (api key ${apiKey}, expected secret ${secret})` : msg;
  if (!account)
    return {
      error: binanceError(
        401,
        -2015,
        echo('Invalid API-key, IP, or permissions for action.', 'unknown'),
      ),
    };

  const params = new URLSearchParams(query);
  for (const name of ['timestamp', 'signature']) {
    if (!params.get(name)) {
      return {
        error: binanceError(
          400,
          -1102,
          `Mandatory parameter '${name}' was not sent, was empty/null, or malformed.`,
        ),
      };
    }
  }
  const timestamp = Number(params.get('timestamp'));
  const recvWindow = Number(params.get('recvWindow') ?? RECV_WINDOW_DEFAULT_MS);
  const now = Date.now() + (options.clockOffsetMs ?? 0);
  if (!Number.isFinite(timestamp) || timestamp > now + 1_000 || now - timestamp > recvWindow) {
    return {
      error: binanceError(400, -1021, 'Timestamp for this request is outside of the recvWindow.'),
    };
  }
  const signatureAt = query.indexOf('&signature=');
  const payload = signatureAt === -1 ? '' : query.slice(0, signatureAt);
  const given = params.get('signature') ?? '';
  if (signatureAt === -1 || !signatureValid(account, payload, given)) {
    return {
      error: binanceError(
        400,
        -1022,
        echo('Signature for this request is not valid.', account.secret),
      ),
    };
  }
  return { account };
}

/**
 * HMAC keys: hex HMAC-SHA256 of the payload. RSA keys: Base64 RSASSA-PKCS1-v1_5 with SHA-256;
 * Ed25519 keys: Base64 Ed25519 (both URL-encoded in the query, as Binance documents).
 */
function signatureValid(account: BinanceAccount, payload: string, given: string): boolean {
  if (account.publicKey === undefined) {
    const expected = createHmac('sha256', account.secret).update(payload).digest('hex');
    return (
      given.length === expected.length && timingSafeEqual(Buffer.from(given), Buffer.from(expected))
    );
  }
  const key = createPublicKey(account.publicKey);
  const signature = Buffer.from(given, 'base64');
  return verify(
    key.asymmetricKeyType === 'ed25519' ? null : 'sha256',
    Buffer.from(payload),
    key,
    signature,
  );
}

/** GET /api/v3/account as documented (spot, with commissionRates and uid). */
function accountJson(account: BinanceAccount, index: number): unknown {
  return {
    makerCommission: 10,
    takerCommission: 10,
    buyerCommission: 0,
    sellerCommission: 0,
    commissionRates: {
      maker: '0.00100000',
      taker: '0.00100000',
      buyer: '0.00000000',
      seller: '0.00000000',
    },
    canTrade: true,
    canWithdraw: true, // the account's, not the key's: apiRestrictions tells the key's
    canDeposit: true,
    brokered: false,
    requireSelfTradePrevention: false,
    preventSor: false,
    updateTime: Date.now() - 60_000,
    accountType: 'SPOT',
    balances: account.balances ?? [
      { asset: 'BTC', free: '0.50000000', locked: '0.00000000' },
      { asset: 'ETH', free: '0.00000000', locked: '0.00000000' },
      { asset: 'USDT', free: '1000.00000000', locked: '25.00000000' },
    ],
    permissions: ['SPOT'],
    uid: 354937868 + index,
  };
}

/** GET /sapi/v1/account/apiRestrictions as documented. */
function apiRestrictionsJson(account: BinanceAccount): unknown {
  return {
    ipRestrict: account.ipRestrict ?? true,
    createTime: 1623840271000,
    enableReading: true,
    enableWithdrawals: account.enableWithdrawals ?? false,
    enableInternalTransfer: false,
    enableMargin: false,
    enableFutures: false,
    permitsUniversalTransfer: false,
    enableVanillaOptions: false,
    enableSpotAndMarginTrading: true,
    enablePortfolioMarginTrading: false,
    enableFixApiSpotAndMarginTrading: false,
    enableFixReadOnly: false,
    ...(account.tradingAuthorityExpirationTime === undefined
      ? {}
      : { tradingAuthorityExpirationTime: account.tradingAuthorityExpirationTime }),
  };
}
