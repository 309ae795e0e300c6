import type { binance } from 'ccxt';
import type { ExchangeProfile } from './ccxt.connector';
import {
  CLOCK_REJECTED,
  codeIs,
  CREDENTIALS_REJECTED,
  IP_NOT_ALLOWED,
  UnexpectedAnswerError,
  type ErrorMatcher,
} from './failures';
import { isRecord } from './hosts';

/**
 * -1022 bad signature, -2014 malformed key, -2015 unknown key / IP / permissions. ccxt maps them to
 * AuthenticationError, except -1022 on portfolio-margin hosts (BadRequest) and -2015 once a signed
 * call of the instance has succeeded (DDoSProtection, its guess for Binance's temporary bans).
 */
export const BINANCE_MATCHERS: readonly ErrorMatcher[] = [
  {
    pattern: codeIs(-2015),
    kind: 'rejected',
    message: `the exchange rejected the key, or ${IP_NOT_ALLOWED}`,
  },
  { pattern: codeIs(-2014), kind: 'rejected', message: CREDENTIALS_REJECTED },
  { pattern: codeIs(-1022), kind: 'rejected', message: CREDENTIALS_REJECTED },
  { pattern: codeIs(-1021), kind: 'unreachable', message: CLOCK_REJECTED },
];

/**
 * Binance's family shares its error codes; Binance itself tells what a key may do:
 * GET /sapi/v1/account/apiRestrictions, on mainnet (the spot testnet has no /sapi). ccxt's
 * fetchBalance is the signed GET /api/v3/account; RSA and Ed25519 keys (a PEM secret) are signed
 * by ccxt as Binance documents.
 */
export const binanceFamilyProfile: ExchangeProfile = { matchers: BINANCE_MATCHERS };

export const binanceProfile: ExchangeProfile = {
  matchers: BINANCE_MATCHERS,
  async permissions({ exchange, input, within }) {
    if (input.environment === 'testnet') return null;
    const restrictions: unknown = await within(
      (exchange as binance).sapiGetAccountApiRestrictions(),
    );
    if (
      !isRecord(restrictions) ||
      typeof restrictions.ipRestrict !== 'boolean' ||
      typeof restrictions.enableWithdrawals !== 'boolean'
    ) {
      throw new UnexpectedAnswerError();
    }
    const trading = [
      'enableSpotAndMarginTrading',
      'enableFutures',
      'enableMargin',
      'enableVanillaOptions',
      'enablePortfolioMarginTrading',
    ];
    // Binance sets it on keys whose trading rights it granted for a limited time; absent otherwise.
    const expiry = restrictions.tradingAuthorityExpirationTime;
    return {
      ...(typeof expiry === 'number' && Number.isSafeInteger(expiry) && expiry > 0
        ? { tradingExpiresAt: new Date(expiry) }
        : {}),
      read: typeof restrictions.enableReading === 'boolean' ? restrictions.enableReading : null,
      trade: trading.some((flag) => restrictions[flag] === true),
      withdraw: restrictions.enableWithdrawals,
      ipRestricted: restrictions.ipRestrict,
    };
  },
};
