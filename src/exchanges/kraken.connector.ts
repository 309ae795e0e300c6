import type { kraken } from 'ccxt';
import type { ExchangeProfile } from './ccxt.connector';
import {
  CREDENTIALS_REJECTED,
  KEY_UNKNOWN,
  UnexpectedAnswerError,
  type ErrorMatcher,
} from './failures';
import { isRecord } from './hosts';

/**
 * Kraken answers HTTP 200 with an `error` list; ccxt knows `EAPI:Invalid key` but not the
 * signature's.
 */
export const KRAKEN_MATCHERS: readonly ErrorMatcher[] = [
  { pattern: /EAPI:Invalid key/, kind: 'rejected', message: KEY_UNKNOWN },
  { pattern: /EAPI:Invalid signature/, kind: 'rejected', message: CREDENTIALS_REJECTED },
  // Not the clock: Kraken wants every nonce of a key above the last one it saw.
  {
    pattern: /EAPI:Invalid nonce/,
    kind: 'unreachable',
    message:
      "the exchange rejected the request's nonce: another client using this key may have sent a higher one (raise the key's nonce window)",
  },
];

/**
 * Kraken: fetchBalance is the signed POST /0/private/BalanceEx; POST /0/private/GetApiKeyInfo
 * tells the key's permissions (`withdraw-funds` among them) and its IP allow-list.
 */
export const krakenProfile: ExchangeProfile = {
  matchers: KRAKEN_MATCHERS,
  async permissions({ exchange, within }) {
    const answer: unknown = await within((exchange as kraken).privatePostGetApiKeyInfo());
    const info = isRecord(answer) && isRecord(answer.result) ? answer.result : undefined;
    if (info === undefined || !Array.isArray(info.permissions)) throw new UnexpectedAnswerError();
    const granted = new Set(info.permissions.filter((p): p is string => typeof p === 'string'));
    return {
      read: granted.has('query-funds'),
      trade: granted.has('modify-trades'),
      withdraw: granted.has('withdraw-funds'),
      ipRestricted: Array.isArray(info.ipAllowlist) ? info.ipAllowlist.length > 0 : null,
    };
  },
  // Kraken's own asset names: XXBT, ZUSD, XETH (X for crypto, Z for fiat), which ccxt maps only
  // with its currencies loaded.
  assetCode(code) {
    const plain = /^[XZ][A-Z]{3}$/.test(code) ? code.slice(1) : code;
    return plain === 'XBT' ? 'BTC' : plain === 'XDG' ? 'DOGE' : plain;
  },
};
