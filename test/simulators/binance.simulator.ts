import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

// The recording server is shared by the exchange simulators (Hyperliquid's imports it from here).

export interface RecordedRequest {
  method: string;
  /** Path and query as sent, e.g. `/api/v3/account?timestamp=...&signature=...`. */
  path: string;
  headers: IncomingHttpHeaders;
  /** Parsed JSON when the body is JSON, else the raw text ('' when empty). */
  body: unknown;
}

export interface Simulator {
  /** `http://127.0.0.1:<port>`, no trailing slash. */
  url: string;
  requests: RecordedRequest[];
  close(): Promise<void>;
}

export interface SimulatorReply {
  status: number;
  json?: unknown;
  text?: string;
}

/**
 * A node:http server on 127.0.0.1 and a free port that records every request and answers what
 * `answer` returns. With `hang`, it accepts connections and requests and never answers.
 */
export async function startRecordingServer(
  options: { hang?: boolean },
  answer: (request: RecordedRequest, rawBody: string) => SimulatorReply,
): Promise<Simulator> {
  const requests: RecordedRequest[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const rawBody = Buffer.concat(chunks).toString('utf8');
      const request: RecordedRequest = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body: parseBody(rawBody) };
      requests.push(request);
      if (options.hang) return;
      const reply = answer(request, rawBody);
      const body = reply.json === undefined ? (reply.text ?? '') : JSON.stringify(reply.json);
      const contentType = reply.json === undefined ? 'text/plain; charset=utf-8' : 'application/json;charset=UTF-8';
      res.writeHead(reply.status, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body) });
      res.end(body);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        // Hanging requests and keep-alive sockets would otherwise hold close() open.
        server.closeAllConnections();
      }),
  };
}

function parseBody(raw: string): unknown {
  if (raw === '') return '';
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    return raw;
  }
}

// ---- Binance ----

export interface BinanceAccount {
  apiKey: string;
  secret: string;
  /** Default false. */
  enableWithdrawals?: boolean;
  /** Default true: a well-configured key passes without warnings. */
  ipRestrict?: boolean;
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
}

export type BinanceSimulator = Simulator;

const RECV_WINDOW_DEFAULT_MS = 5_000;

/** A Binance spot API that knows the given keys: signed `GET /api/v3/account` and `GET /sapi/v1/account/apiRestrictions`. */
export function startBinanceSimulator(options: BinanceSimulatorOptions): Promise<BinanceSimulator> {
  const prefix = (options.pathPrefix ?? '').replace(/\/+$/, '');
  return startRecordingServer(options, (request) => {
    const url = new URL(request.path, 'http://simulator');
    const route = url.pathname.startsWith(prefix) ? url.pathname.slice(prefix.length) : null;
    const served = route === '/api/v3/account' || (route === '/sapi/v1/account/apiRestrictions' && !options.testnet);
    if (request.method !== 'GET' || !served) {
      return { status: 404, text: '<html><body><h1>404 Not Found</h1></body></html>' };
    }
    const signed = verifySigned(request, url.search.slice(1), options);
    if ('error' in signed) return signed.error;
    const json = route === '/api/v3/account' ? accountJson(options.accounts.indexOf(signed.account)) : apiRestrictionsJson(signed.account);
    return { status: 200, json };
  });
}

function binanceError(status: number, code: number, msg: string): SimulatorReply {
  return { status, json: { code, msg } };
}

/** Binance's order of checks: the key, then the mandatory parameters, the time window, the signature. */
function verifySigned(
  request: RecordedRequest,
  query: string,
  options: BinanceSimulatorOptions,
): { account: BinanceAccount } | { error: SimulatorReply } {
  const apiKey = request.headers['x-mbx-apikey'];
  if (typeof apiKey !== 'string' || apiKey === '') return { error: binanceError(401, -2014, 'API-key format invalid.') };
  const account = options.accounts.find((candidate) => candidate.apiKey === apiKey);
  const echo = (msg: string, secret: string) => (options.echoSecretInErrors ? `${msg} (api key ${apiKey}, expected secret ${secret})` : msg);
  if (!account) return { error: binanceError(401, -2015, echo('Invalid API-key, IP, or permissions for action.', 'unknown')) };

  const params = new URLSearchParams(query);
  for (const name of ['timestamp', 'signature']) {
    if (!params.get(name)) {
      return { error: binanceError(400, -1102, `Mandatory parameter '${name}' was not sent, was empty/null, or malformed.`) };
    }
  }
  const timestamp = Number(params.get('timestamp'));
  const recvWindow = Number(params.get('recvWindow') ?? RECV_WINDOW_DEFAULT_MS);
  const now = Date.now();
  if (!Number.isFinite(timestamp) || timestamp > now + 1_000 || now - timestamp > recvWindow) {
    return { error: binanceError(400, -1021, 'Timestamp for this request is outside of the recvWindow.') };
  }
  const signatureAt = query.indexOf('&signature=');
  const payload = signatureAt === -1 ? '' : query.slice(0, signatureAt);
  const expected = createHmac('sha256', account.secret).update(payload).digest('hex');
  const given = params.get('signature') ?? '';
  if (signatureAt === -1 || given.length !== expected.length || !timingSafeEqual(Buffer.from(given), Buffer.from(expected))) {
    return { error: binanceError(400, -1022, echo('Signature for this request is not valid.', account.secret)) };
  }
  return { account };
}

/** GET /api/v3/account as documented (spot, with commissionRates and uid). */
function accountJson(index: number): unknown {
  return {
    makerCommission: 10,
    takerCommission: 10,
    buyerCommission: 0,
    sellerCommission: 0,
    commissionRates: { maker: '0.00100000', taker: '0.00100000', buyer: '0.00000000', seller: '0.00000000' },
    canTrade: true,
    canWithdraw: true, // the account's, not the key's: apiRestrictions tells the key's
    canDeposit: true,
    brokered: false,
    requireSelfTradePrevention: false,
    preventSor: false,
    updateTime: Date.now() - 60_000,
    accountType: 'SPOT',
    balances: [
      { asset: 'BTC', free: '0.50000000', locked: '0.00000000' },
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
  };
}
