import { createHmac } from 'node:crypto';
import {
  sameText,
  startRecordingServer,
  type RecordedRequest,
  type Simulator,
  type SimulatorReply,
} from './recording-server';

export interface OkxAccount {
  apiKey: string;
  secret: string;
  passphrase: string;
  /** The key's permissions as OKX lists them; default 'read_only,trade'. */
  perm?: string;
  /** IP addresses the key is bound to, comma-separated; default '' (none). */
  ip?: string;
  /** A demo-trading key: it answers only requests with `x-simulated-trading: 1`. */
  demo?: boolean;
  /** Default: USDT 1200 (200 frozen) and BTC 0.25. */
  balances?: Array<{ ccy: string; eq: string; availBal: string; frozenBal: string }>;
}

export interface OkxSimulatorOptions {
  accounts: OkxAccount[];
  hang?: boolean;
}

const WINDOW_MS = 30_000;

/**
 * OKX's v5 REST API for signed GET /api/v5/account/balance and /api/v5/account/config, checking
 * requests as OKX documents: OK-ACCESS-KEY, OK-ACCESS-PASSPHRASE, OK-ACCESS-TIMESTAMP (ISO 8601,
 * within 30 s) and OK-ACCESS-SIGN, the Base64 HMAC-SHA256 of timestamp + method + request path
 * (with its query) + body. Errors come in OKX's shape: HTTP 401,
 * {"code":"501xx","msg":...,"data":[]}.
 */
export function startOkxSimulator(options: OkxSimulatorOptions): Promise<Simulator> {
  return startRecordingServer(options, (request, rawBody) => {
    const path = request.path;
    const route = path.split('?')[0];
    if (
      request.method !== 'GET' ||
      (route !== '/api/v5/account/balance' && route !== '/api/v5/account/config')
    ) {
      return { status: 404, json: { code: '50000', msg: 'Not Found', data: [] } };
    }
    const verified = verify(request, rawBody, options.accounts);
    if ('error' in verified) return verified.error;
    const { account } = verified;
    return {
      status: 200,
      json: route === '/api/v5/account/balance' ? balanceJson(account) : configJson(account),
    };
  });
}

function okxError(code: string, msg: string): SimulatorReply {
  return { status: 401, json: { code, msg, data: [] } };
}

function header(request: RecordedRequest, name: string): string | undefined {
  const value = request.headers[name];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function verify(
  request: RecordedRequest,
  rawBody: string,
  accounts: OkxAccount[],
): { account: OkxAccount } | { error: SimulatorReply } {
  const key = header(request, 'ok-access-key');
  const sign = header(request, 'ok-access-sign');
  const timestamp = header(request, 'ok-access-timestamp');
  const passphrase = header(request, 'ok-access-passphrase');
  if (key === undefined)
    return { error: okxError('50103', 'Request header OK-ACCESS-KEY cannot be empty.') };
  if (passphrase === undefined)
    return { error: okxError('50104', 'Request header OK-ACCESS-PASSPHRASE cannot be empty.') };
  if (sign === undefined)
    return { error: okxError('50106', 'Request header OK-ACCESS-SIGN cannot be empty.') };
  if (timestamp === undefined)
    return { error: okxError('50107', 'Request header OK-ACCESS-TIMESTAMP cannot be empty.') };
  const stamped = Date.parse(timestamp);
  if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/.test(timestamp) || Number.isNaN(stamped))
    return { error: okxError('50112', 'Invalid OK-ACCESS-TIMESTAMP') };
  if (Math.abs(Date.now() - stamped) > WINDOW_MS)
    return { error: okxError('50102', 'Timestamp request expired') };
  const account = accounts.find((candidate) => candidate.apiKey === key);
  if (!account) return { error: okxError('50111', 'Invalid OK-ACCESS-KEY') };
  const simulated = request.headers['x-simulated-trading'] === '1';
  if (simulated !== (account.demo ?? false))
    return { error: okxError('50101', 'APIKey does not match current environment.') };
  if (!sameText(passphrase, account.passphrase))
    return { error: okxError('50105', 'OK-ACCESS-PASSPHRASE incorrect') };
  const expected = createHmac('sha256', account.secret)
    .update(`${timestamp}${request.method}${request.path}${rawBody}`)
    .digest('base64');
  if (!sameText(sign, expected)) return { error: okxError('50113', 'Invalid Sign') };
  return { account };
}

function balanceJson(account: OkxAccount): unknown {
  const balances = account.balances ?? [
    { ccy: 'USDT', eq: '1200', availBal: '1000', frozenBal: '200' },
    { ccy: 'BTC', eq: '0.25', availBal: '0.25', frozenBal: '0' },
    { ccy: 'ETH', eq: '0', availBal: '0', frozenBal: '0' },
  ];
  return {
    code: '0',
    msg: '',
    data: [
      {
        adjEq: '',
        details: balances.map((b) => ({
          ...b,
          cashBal: b.eq,
          disEq: b.eq,
          eqUsd: b.eq,
          ordFrozen: b.frozenBal,
          uTime: String(Date.now()),
        })),
        imr: '',
        isoEq: '0',
        mgnRatio: '',
        totalEq: '1200',
        uTime: String(Date.now()),
      },
    ],
  };
}

/**
 * GET /api/v5/account/config as documented: `perm` lists the key's permissions, `ip` its bound
 * addresses.
 */
function configJson(account: OkxAccount): unknown {
  return {
    code: '0',
    msg: '',
    data: [
      {
        acctLv: '2',
        autoLoan: false,
        ctIsoMode: 'automatic',
        greeksType: 'PA',
        ip: account.ip ?? '',
        label: 'wallet-service',
        level: 'Lv1',
        mainUid: '44705892343619584',
        mgnIsoMode: 'automatic',
        perm: account.perm ?? 'read_only,trade',
        posMode: 'long_short_mode',
        uid: '44705892343619584',
      },
    ],
  };
}
