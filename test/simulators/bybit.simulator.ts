import { createHmac } from 'node:crypto';
import {
  sameText,
  startRecordingServer,
  type RecordedRequest,
  type Simulator,
  type SimulatorReply,
} from './recording-server';

export interface BybitAccount {
  apiKey: string;
  secret: string;
  /** 1: read only. Default 0. */
  readOnly?: 0 | 1;
  /** query-api's `permissions`; default: contract and spot trading, transfers (no Withdraw). */
  permissions?: Record<string, string[]>;
  /** Bound IPs; default ['*'] (none). */
  ips?: string[];
  /** Unified trading account (1, the default) or classic (0). */
  uta?: 0 | 1;
  /** wallet-balance coins; default USDT 500 (120 locked) and BTC 0.01. */
  coins?: Array<{ coin: string; walletBalance: string; locked: string }>;
}

export interface BybitSimulatorOptions {
  accounts: BybitAccount[];
  hang?: boolean;
}

export type BybitSimulator = Simulator;

const ROUTES = new Set(['/v5/user/query-api', '/v5/account/info', '/v5/account/wallet-balance']);

/**
 * Bybit's v5 API for signed GET /v5/user/query-api, /v5/account/info and
 * /v5/account/wallet-balance, checking requests as Bybit documents: X-BAPI-API-KEY,
 * X-BAPI-TIMESTAMP (ms, within X-BAPI-RECV-WINDOW before the server's time, at most 1 s after),
 * X-BAPI-SIGN = hex HMAC-SHA256 of timestamp + key + recv window + query string. Errors as Bybit
 * gives them: {"retCode":100xx,"retMsg":...,"result":{},"retExtInfo":{},"time":...}.
 */
export function startBybitSimulator(options: BybitSimulatorOptions): Promise<BybitSimulator> {
  return startRecordingServer(options, (request) => {
    const [route, query = ''] = request.path.split('?');
    if (request.method !== 'GET' || !ROUTES.has(route))
      return {
        status: 404,
        json: { retCode: 10001, retMsg: 'Not found', result: {}, retExtInfo: {}, time: Date.now() },
      };
    const verified = verify(request, query, options.accounts);
    if ('error' in verified) return verified.error;
    const { account } = verified;
    if (route === '/v5/user/query-api') return reply(queryApi(account));
    if (route === '/v5/account/info')
      return reply({
        marginMode: 'REGULAR_MARGIN',
        updatedTime: String(Date.now()),
        unifiedMarginStatus: account.uta === 0 ? 1 : 6,
        dcpStatus: 'OFF',
        timeWindow: 10,
        smpGroup: 0,
        isMasterTrader: false,
        spotHedgingStatus: 'OFF',
      });
    const accountType = new URLSearchParams(query).get('accountType') ?? '';
    return reply(walletBalance(account, accountType));
  });
}

function reply(result: unknown): SimulatorReply {
  return {
    status: 200,
    json: { retCode: 0, retMsg: 'OK', result, retExtInfo: {}, time: Date.now() },
  };
}

function bybitError(retCode: number, retMsg: string): SimulatorReply {
  return { status: 200, json: { retCode, retMsg, result: {}, retExtInfo: {}, time: Date.now() } };
}

function verify(
  request: RecordedRequest,
  query: string,
  accounts: BybitAccount[],
): { account: BybitAccount } | { error: SimulatorReply } {
  const text = (name: string) =>
    typeof request.headers[name] === 'string' ? request.headers[name] : '';
  const key = text('x-bapi-api-key');
  const timestamp = text('x-bapi-timestamp');
  const recvWindow = text('x-bapi-recv-window') || '5000';
  const account = accounts.find((candidate) => candidate.apiKey === key);
  if (!account) return { error: bybitError(10003, 'API key is invalid.') };
  const now = Date.now();
  const stamped = Number(timestamp);
  if (!/^\d+$/.test(timestamp) || stamped > now + 1_000 || now - stamped > Number(recvWindow)) {
    return {
      error: bybitError(
        10002,
        `invalid request, please check your server timestamp or recv_window param. req_timestamp[${timestamp}],server_timestamp[${now}],recv_window[${recvWindow}]`,
      ),
    };
  }
  const origin = `${timestamp}${key}${recvWindow}${query}`;
  const expected = createHmac('sha256', account.secret).update(origin).digest('hex');
  // Bybit echoes the string it signed, the key in it.
  if (!sameText(text('x-bapi-sign'), expected))
    return { error: bybitError(10004, `error sign! origin_string[${origin}]`) };
  return { account };
}

/** GET /v5/user/query-api as documented. */
function queryApi(account: BybitAccount): unknown {
  return {
    id: '13770661',
    note: 'wallet-service',
    apiKey: account.apiKey,
    readOnly: account.readOnly ?? 0,
    secret: '',
    permissions: account.permissions ?? {
      ContractTrade: ['Order', 'Position'],
      Spot: ['SpotTrade'],
      Wallet: ['AccountTransfer', 'SubMemberTransfer'],
      Options: [],
      Derivatives: [],
      CopyTrading: [],
      BlockTrade: [],
      Exchange: [],
      NFT: [],
    },
    ips: account.ips ?? ['*'],
    type: 1,
    deadlineDay: 83,
    expiredAt: '2027-05-15T03:21:05Z',
    createdAt: '2026-10-16T02:24:40Z',
    unified: 0,
    uta: account.uta ?? 1,
    userID: 24600000,
    inviterID: 0,
    vipLevel: 'No VIP',
    mktMakerLevel: '0',
    affiliateID: 0,
    rsaPublicKey: '',
    isMaster: true,
  };
}

function walletBalance(account: BybitAccount, accountType: string): unknown {
  const coins = account.coins ?? [
    { coin: 'USDT', walletBalance: '500', locked: '120' },
    { coin: 'BTC', walletBalance: '0.01', locked: '0' },
  ];
  return {
    list: [
      {
        accountType,
        totalEquity: '1500',
        totalWalletBalance: '1500',
        coin: coins.map((c) => ({
          ...c,
          equity: c.walletBalance,
          usdValue: c.walletBalance,
          borrowAmount: '0',
          totalPositionIM: '0',
          totalOrderIM: '0',
          accruedInterest: '0',
        })),
      },
    ],
  };
}
