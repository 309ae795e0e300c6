import type { hyperliquid } from 'ccxt';
import { describeExchangeError, failure } from './errors';
import { isRecord, loadCcxt, pointAtBaseUrl, releaseExchange, resolveBaseUrl, withDeadline } from './hosts';
import type { ConnectionCheckInput, ConnectionCheckResult, ExchangeConnector } from './types';

const PRIVATE_KEY = /^(0x)?[0-9a-fA-F]{64}$/;
const ADDRESS = /^0x[0-9a-fA-F]{40}$/;

const UNEXPECTED_ANSWER = 'the exchange returned an unexpected answer';

/**
 * Hyperliquid's info endpoint is public, so nothing here proves the key to the exchange; the check
 * proves what can be proved without signing: the key's shape, that the account exists, and that a
 * key other than the account's own is an approved agent (API wallet) of it.
 *
 * clearinghouseState answers any well-formed address, with zeros for an unknown one, so it only
 * proves the exchange is reachable and speaks the expected shape. Existence is asked of userRole
 * instead, with one call either way: for the account itself when the key is the account's own,
 * otherwise for the key, whose `agent` answer names the account (and so proves it exists).
 */
export const hyperliquidConnector: ExchangeConnector = {
  async check(input: ConnectionCheckInput): Promise<ConnectionCheckResult> {
    const privateKey = input.values.private_key;
    if (!privateKey?.trim()) return failure('the credential has no private_key');
    if (!PRIVATE_KEY.test(privateKey)) {
      return failure('the private key must be 64 hexadecimal characters, optionally prefixed with 0x');
    }
    const walletAddress = input.values.wallet_address?.trim() ? input.values.wallet_address : undefined;
    if (walletAddress !== undefined && !ADDRESS.test(walletAddress)) {
      return failure('the wallet address must be 0x followed by 40 hexadecimal characters');
    }
    const base = resolveBaseUrl(input);
    if ('error' in base) return failure(base.error);

    const ccxt = loadCcxt();
    const exchange = new ccxt.hyperliquid({ timeout: input.timeoutMs, enableRateLimit: false });
    const keyAddress = addressOfKey(exchange, privateKey);
    if (keyAddress === undefined) return failure('the private key is not a valid secp256k1 private key');
    // Hyperliquid answers with lower-case addresses; compare (and ask) in lower case.
    const account = (walletAddress ?? keyAddress).toLowerCase();
    pointAtBaseUrl(exchange, base.url);
    const info = (request: Record<string, string>): Promise<unknown> =>
      withDeadline(ccxt, exchange.publicPostInfo(request), input.timeoutMs);
    try {
      if (!isClearinghouseState(await info({ type: 'clearinghouseState', user: account }))) return failure(UNEXPECTED_ANSWER);

      const asked = keyAddress === account ? account : keyAddress;
      const role = parseUserRole(await info({ type: 'userRole', user: asked }));
      if (role === undefined) return failure(UNEXPECTED_ANSWER);
      if (keyAddress !== account) {
        return role.role === 'agent' && role.user === account
          ? { ok: true, warnings: [] }
          : failure('this key is not an approved agent of the account');
      }
      if (role.role === 'missing') return failure('no Hyperliquid account exists for this address');
      if (role.role === 'agent') {
        return failure("this key belongs to an API wallet: set wallet_address to the address of the account it trades for");
      }
      return { ok: true, warnings: [] };
    } catch (error) {
      const message = describeExchangeError(ccxt, error, { timeoutMs: input.timeoutMs });
      if (message === null) throw error;
      return failure(message);
    } finally {
      await releaseExchange(exchange);
    }
  },
};

/** Lower-case 0x address; undefined for a key outside secp256k1's range (zero, or not below the curve order). */
function addressOfKey(exchange: hyperliquid, privateKey: string): string | undefined {
  try {
    return exchange.ethGetAddressFromPrivateKey(privateKey).toLowerCase();
  } catch {
    return undefined;
  }
}

function isClearinghouseState(value: unknown): boolean {
  return isRecord(value) && isRecord(value.marginSummary) && Array.isArray(value.assetPositions);
}

interface UserRole {
  role: string; // 'user' | 'agent' | 'vault' | 'subAccount' | 'missing'
  user?: string; // for 'agent': the account it acts for, lower case
}

function parseUserRole(value: unknown): UserRole | undefined {
  if (!isRecord(value) || typeof value.role !== 'string') return undefined;
  const user = isRecord(value.data) && typeof value.data.user === 'string' ? value.data.user.toLowerCase() : undefined;
  return { role: value.role, user };
}
