import type { bybit } from 'ccxt';
import type { ExchangeProfile } from './ccxt.connector';
import {
  codeIs,
  CREDENTIALS_REJECTED,
  IP_NOT_ALLOWED,
  KEY_UNKNOWN,
  UnexpectedAnswerError,
  type ErrorMatcher,
} from './failures';
import { isRecord } from './hosts';

export const BYBIT_MATCHERS: readonly ErrorMatcher[] = [
  { pattern: codeIs(10003, 'retCode'), kind: 'rejected', message: KEY_UNKNOWN },
  { pattern: codeIs(10004, 'retCode'), kind: 'rejected', message: CREDENTIALS_REJECTED },
  { pattern: codeIs(10010, 'retCode'), kind: 'rejected', message: IP_NOT_ALLOWED },
];

const TRADING = ['ContractTrade', 'Spot', 'Options', 'Derivatives', 'CopyTrading', 'BlockTrade'];

/**
 * Bybit v5 (and its EU and Indonesian sites): ccxt's fetchBalance asks GET /v5/user/query-api and
 * /v5/account/info which account type to read, then GET /v5/account/wallet-balance, all signed;
 * query-api also tells the key's permissions (`Wallet: [... "Withdraw"]`) and bound IPs.
 */
export const bybitProfile: ExchangeProfile = {
  matchers: BYBIT_MATCHERS,
  async permissions({ exchange, within }) {
    const answer: unknown = await within((exchange as bybit).privateGetV5UserQueryApi());
    const key = isRecord(answer) && isRecord(answer.result) ? answer.result : undefined;
    if (key === undefined || !isRecord(key.permissions)) throw new UnexpectedAnswerError();
    const granted = key.permissions;
    const has = (group: string, permission?: string) =>
      Array.isArray(granted[group]) &&
      (permission === undefined ? granted[group].length > 0 : granted[group].includes(permission));
    const ips = Array.isArray(key.ips) ? key.ips : undefined;
    return {
      read: true,
      trade: key.readOnly === 0 && TRADING.some((group) => has(group)),
      withdraw: has('Wallet', 'Withdraw'),
      ipRestricted: ips === undefined ? null : ips.length > 0 && !ips.includes('*'),
    };
  },
};
