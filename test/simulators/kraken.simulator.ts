import { createHash, createHmac } from 'node:crypto';
import {
  sameText,
  startRecordingServer,
  type Simulator,
  type SimulatorReply,
} from './recording-server';

export interface KrakenAccount {
  apiKey: string;
  /** Base64, as Kraken hands it out. */
  secret: string;
  /**
   * Default: query-funds, query-open-trades, query-closed-trades, modify-trades,
   * cancel-close-trades.
   */
  permissions?: string[];
  ipAllowlist?: string[];
  /** BalanceEx's result; default XXBT 1.2435 (0.8423 held), ZUSD 25435.21, USDT 0. */
  balances?: Record<string, { balance: string; hold_trade: string }>;
}

export interface KrakenSimulatorOptions {
  accounts: KrakenAccount[];
  hang?: boolean;
}

export type KrakenSimulator = Simulator;

/**
 * Kraken's spot REST API for POST /0/private/BalanceEx and /0/private/GetApiKeyInfo (and the
 * public Time), checking requests as Kraken documents: API-Key, and API-Sign = Base64 of
 * HMAC-SHA512, keyed with the Base64-decoded secret, over the URI path + SHA-256(nonce + POST
 * data); each key's nonce strictly increasing. Errors as Kraken gives them: HTTP 200,
 * {"error":["EAPI:..."]}.
 */
export function startKrakenSimulator(options: KrakenSimulatorOptions): Promise<KrakenSimulator> {
  const lastNonce = new Map<string, bigint>();
  return startRecordingServer(options, (request, rawBody) => {
    const path = request.path.split('?')[0];
    if (request.method === 'GET' && path === '/0/public/Time') {
      const now = Date.now();
      return ok({ unixtime: Math.floor(now / 1000), rfc1123: new Date(now).toUTCString() });
    }
    if (
      request.method !== 'POST' ||
      (path !== '/0/private/BalanceEx' && path !== '/0/private/GetApiKeyInfo')
    ) {
      return { status: 404, json: { error: ['EGeneral:Unknown method'] } };
    }
    const key = request.headers['api-key'];
    const account = options.accounts.find((candidate) => candidate.apiKey === key);
    if (typeof key !== 'string' || !account) return krakenError('EAPI:Invalid key');
    const nonceText = new URLSearchParams(rawBody).get('nonce') ?? '';
    if (!/^\d{1,20}$/.test(nonceText)) return krakenError('EAPI:Invalid nonce');
    const digest = createHash('sha256')
      .update(nonceText + rawBody)
      .digest();
    const expected = createHmac('sha512', Buffer.from(account.secret, 'base64'))
      .update(Buffer.concat([Buffer.from(path), digest]))
      .digest('base64');
    const sign = request.headers['api-sign'];
    if (typeof sign !== 'string' || !sameText(sign, expected))
      return krakenError('EAPI:Invalid signature');
    const nonce = BigInt(nonceText);
    if (nonce <= (lastNonce.get(account.apiKey) ?? 0n)) return krakenError('EAPI:Invalid nonce');
    lastNonce.set(account.apiKey, nonce);
    return ok(path === '/0/private/BalanceEx' ? balances(account) : apiKeyInfo(account, nonceText));
  });
}

function ok(result: unknown): SimulatorReply {
  return { status: 200, json: { error: [], result } };
}

function krakenError(error: string): SimulatorReply {
  return { status: 200, json: { error: [error] } };
}

function balances(account: KrakenAccount): unknown {
  return (
    account.balances ?? {
      XXBT: { balance: '1.2435', hold_trade: '0.8423' },
      ZUSD: { balance: '25435.21', hold_trade: '0' },
      USDT: { balance: '0', hold_trade: '0' },
    }
  );
}

/** POST /0/private/GetApiKeyInfo as documented. */
function apiKeyInfo(account: KrakenAccount, nonce: string): unknown {
  return {
    apiKeyName: 'wallet-service',
    apiKey: account.apiKey,
    nonce,
    nonceWindow: 0,
    permissions: account.permissions ?? [
      'query-funds',
      'query-open-trades',
      'query-closed-trades',
      'modify-trades',
      'cancel-close-trades',
    ],
    iban: 'AA88 N84G WOAK NMOI',
    validUntil: '0',
    queryFrom: '0',
    queryTo: '0',
    createdTime: '1772542900',
    modifiedTime: '1772543095',
    ipAllowlist: account.ipAllowlist ?? [],
    lastUsed: String(Math.floor(Date.now() / 1000)),
  };
}
