import { createPublicKey, verify } from 'node:crypto';
import { startRecordingServer, type RecordedRequest, type Simulator } from './recording-server';

export interface CoinbaseAccount {
  /** The CDP key's name, organizations/.../apiKeys/... */
  apiKey: string;
  /** The public half of its EC (P-256) key, PEM. */
  publicKey: string;
  canTrade?: boolean;
  /** Whether the key may move funds out; default false. */
  canTransfer?: boolean;
  /** Default: BTC 0.4, USD 250. */
  accounts?: Array<{ currency: string; amount: string }>;
}

export interface CoinbaseSimulatorOptions {
  accounts: CoinbaseAccount[];
  hang?: boolean;
}

const ROUTES = new Set(['/v2/accounts', '/api/v3/brokerage/key_permissions']);

/**
 * Coinbase's GET /v2/accounts (ccxt's default fetchBalance) and Advanced Trade's
 * /api/v3/brokerage/key_permissions, checking each
 * request's JWT as Coinbase documents for CDP keys: ES256 by the key (`kid` and `sub` its name),
 * `iss` coinbase-cloud, valid now (nbf..exp, at most 2 minutes), `uri` the request's method, host
 * and path (ccxt drops only an `https://`, so over plain http the scheme stays in it). Anything
 * else is Coinbase's bare HTTP 401 "Unauthorized", a body ccxt does not read as an error.
 */
export function startCoinbaseSimulator(options: CoinbaseSimulatorOptions): Promise<Simulator> {
  return startRecordingServer(options, (request) => {
    const [path] = request.path.split('?');
    if (request.method !== 'GET' || !ROUTES.has(path))
      return { status: 404, json: { error: 'NOT_FOUND', message: 'Not Found' } };
    const account = verifyJwt(request, path, options.accounts);
    if (account === undefined) return { status: 401, text: 'Unauthorized\n' };
    if (path === '/api/v3/brokerage/key_permissions') {
      return {
        status: 200,
        json: {
          can_view: true,
          can_trade: account.canTrade ?? true,
          can_transfer: account.canTransfer ?? false,
          portfolio_uuid: '8d3f1a2b-0000-4000-8000-000000000000',
          portfolio_type: 'DEFAULT',
        },
      };
    }
    return { status: 200, json: accountsJson(account) };
  });
}

function decode(part: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    return typeof value === 'object' && value !== null
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

function verifyJwt(
  request: RecordedRequest,
  path: string,
  accounts: CoinbaseAccount[],
): CoinbaseAccount | undefined {
  const authorization = request.headers.authorization ?? '';
  const token = /^Bearer ([\w-]+)\.([\w-]+)\.([\w-]+)$/.exec(authorization);
  if (!token) return undefined;
  const [header, payload] = [decode(token[1]), decode(token[2])];
  if (header?.alg !== 'ES256' || payload === undefined) return undefined;
  const account = accounts.find(
    (candidate) => candidate.apiKey === header.kid && candidate.apiKey === payload.sub,
  );
  if (!account) return undefined;
  const signed = verify(
    'sha256',
    Buffer.from(`${token[1]}.${token[2]}`),
    { key: createPublicKey(account.publicKey), dsaEncoding: 'ieee-p1363' },
    Buffer.from(token[3], 'base64url'),
  );
  if (!signed) return undefined;
  const now = Math.floor(Date.now() / 1000);
  const [nbf, exp] = [Number(payload.nbf), Number(payload.exp)];
  if (payload.iss !== 'coinbase-cloud' || !(nbf <= now + 5 && now <= exp && exp - nbf <= 120))
    return undefined;
  const target = `${request.headers.host ?? ''}${path}`;
  if (
    payload.uri !== `${request.method} ${target}` &&
    payload.uri !== `${request.method} http://${target}`
  )
    return undefined;
  return account;
}

/** GET /v2/accounts as documented: one wallet per currency, its balance. */
function accountsJson(account: CoinbaseAccount): unknown {
  const balances = account.accounts ?? [
    { currency: 'BTC', amount: '0.4' },
    { currency: 'USD', amount: '250' },
    { currency: 'ETH', amount: '0' },
  ];
  return {
    pagination: {
      ending_before: null,
      starting_after: null,
      previous_ending_before: null,
      next_starting_after: null,
      limit: 250,
      order: 'desc',
      previous_uri: null,
      next_uri: null,
    },
    data: balances.map((b, i) => ({
      id: `8bfc20d7-f7c6-4422-bf07-8243ca4169f${i}`,
      name: `${b.currency} Wallet`,
      primary: true,
      type: b.currency === 'USD' ? 'fiat' : 'wallet',
      currency: { code: b.currency, name: b.currency },
      balance: { amount: b.amount, currency: b.currency },
      created_at: '2026-01-01T00:00:00Z',
      updated_at: '2026-01-01T00:00:00Z',
      resource: 'account',
      resource_path: `/v2/accounts/8bfc20d7-f7c6-4422-bf07-8243ca4169f${i}`,
    })),
  };
}
