import { describeExchangeError, failure } from './errors';
import { isRecord, loadCcxt, pointAtBaseUrl, releaseExchange, resolveBaseUrl, withDeadline } from './hosts';
import type { ConnectionCheckInput, ConnectionCheckResult, ExchangeConnector } from './types';

/**
 * -1022 bad signature, -2014 malformed key, -2015 unknown key / IP / permissions. ccxt maps them to
 * AuthenticationError, except -1022 on portfolio-margin hosts (BadRequest) and -2015 once a signed
 * call of the instance has succeeded (DDoSProtection, its guess for Binance's temporary bans).
 */
const CREDENTIAL_CODES: ReadonlySet<number> = new Set([-1022, -2014, -2015]);

const UNEXPECTED_ANSWER = 'the exchange returned an unexpected answer';

/**
 * A signed GET /api/v3/account proves the key and secret; on mainnet GET
 * /sapi/v1/account/apiRestrictions then tells what the key may do (Binance's testnet has no /sapi).
 */
export const binanceConnector: ExchangeConnector = {
  async check(input: ConnectionCheckInput): Promise<ConnectionCheckResult> {
    const apiKey = input.values.api_key;
    const secret = input.values.api_secret;
    if (!apiKey?.trim()) return failure('the credential has no api_key');
    if (!secret?.trim()) return failure('the credential has no api_secret');
    const base = resolveBaseUrl(input);
    if ('error' in base) return failure(base.error);

    const ccxt = loadCcxt();
    const exchange = new ccxt.binance({ apiKey, secret, timeout: input.timeoutMs, enableRateLimit: false });
    pointAtBaseUrl(exchange, base.url);
    const warnings: string[] = [];
    try {
      const account: unknown = await withDeadline(ccxt, exchange.privateGetAccount(), input.timeoutMs);
      if (!isRecord(account) || !Array.isArray(account.balances)) return failure(UNEXPECTED_ANSWER);
      if (input.environment === 'testnet') return { ok: true, warnings };

      const restrictions: unknown = await withDeadline(ccxt, exchange.sapiGetAccountApiRestrictions(), input.timeoutMs);
      if (!isApiRestrictions(restrictions)) return failure(UNEXPECTED_ANSWER);
      if (!restrictions.ipRestrict) warnings.push('this API key is not restricted to trusted IP addresses');
      if (restrictions.enableWithdrawals) {
        if (!input.allowWithdrawalKeys) {
          return failure('this API key can withdraw funds and must not: create a key with withdrawals disabled', warnings);
        }
        warnings.push('this API key can withdraw funds');
      }
      return { ok: true, warnings };
    } catch (error) {
      const message = describeExchangeError(ccxt, error, { timeoutMs: input.timeoutMs, credentialCodes: CREDENTIAL_CODES });
      if (message === null) throw error;
      return failure(message, warnings);
    } finally {
      await releaseExchange(exchange);
    }
  },
};

interface ApiRestrictions {
  ipRestrict: boolean;
  enableWithdrawals: boolean;
}

function isApiRestrictions(value: unknown): value is ApiRestrictions {
  return isRecord(value) && typeof value.ipRestrict === 'boolean' && typeof value.enableWithdrawals === 'boolean';
}
