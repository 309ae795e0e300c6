import type { okx } from 'ccxt';
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

/** OKX's codes (ccxt maps most to AuthenticationError; these messages say which part was wrong). */
export const OKX_MATCHERS: readonly ErrorMatcher[] = [
  { pattern: codeIs(50111), kind: 'rejected', message: KEY_UNKNOWN },
  { pattern: codeIs(50105), kind: 'rejected', message: 'the exchange rejected the passphrase' },
  { pattern: codeIs(50113), kind: 'rejected', message: CREDENTIALS_REJECTED },
  { pattern: codeIs(50110), kind: 'rejected', message: IP_NOT_ALLOWED },
  {
    pattern: codeIs(50101),
    kind: 'rejected',
    message:
      "this key is for the other environment: live and demo-trading keys are separate (check the credential's environment)",
  },
];

/**
 * OKX (and its EEA and US sites): fetchBalance is the signed GET /api/v5/account/balance; GET
 * /api/v5/account/config tells the key's `perm` ("read_only,trade,withdraw") and bound `ip`s.
 */
export const okxProfile: ExchangeProfile = {
  matchers: OKX_MATCHERS,
  async permissions({ exchange, within }) {
    const answer: unknown = await within((exchange as okx).privateGetAccountConfig());
    const config =
      isRecord(answer) && Array.isArray(answer.data) && isRecord(answer.data[0])
        ? answer.data[0]
        : undefined;
    if (config === undefined || typeof config.perm !== 'string') throw new UnexpectedAnswerError();
    const perm = new Set(config.perm.split(',').map((p) => p.trim()));
    return {
      read: perm.has('read_only') || perm.has('trade'),
      trade: perm.has('trade'),
      withdraw: perm.has('withdraw'),
      ipRestricted: typeof config.ip === 'string' ? config.ip.trim() !== '' : null,
    };
  },
};
