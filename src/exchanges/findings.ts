import { isRecord } from './hosts';
import type {
  AssetBalance,
  ConnectionCheckInput,
  ConnectionCheckResult,
  KeyPermissions,
} from './types';

export const MAX_BALANCES = 100;
const ASSET = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,39}$/;

export const WITHDRAW_UNKNOWN = 'this exchange does not say whether the key can withdraw';
export const NOT_IP_RESTRICTED = 'this API key is not restricted to trusted IP addresses';
export const IP_RESTRICTION_UNKNOWN =
  'this exchange does not say whether the key is restricted to trusted IP addresses: IP binding could not be checked';

/**
 * The non-zero balances of a ccxt balance structure (`total`, `free`, `used` by currency code),
 * by asset, at most MAX_BALANCES of them (the first by asset code). Codes that are not plain
 * asset symbols are left out: they come from the exchange.
 */
export function nonZeroBalances(
  balance: unknown,
  assetCode: (code: string) => string = (code) => code,
): AssetBalance[] {
  if (!isRecord(balance)) return [];
  const totals = isRecord(balance.total) ? balance.total : {};
  const frees = isRecord(balance.free) ? balance.free : {};
  const useds = isRecord(balance.used) ? balance.used : {};
  const merged = new Map<string, AssetBalance>();
  for (const code of new Set([
    ...Object.keys(totals),
    ...Object.keys(frees),
    ...Object.keys(useds),
  ])) {
    const free = finite(frees[code]);
    const used = finite(useds[code]);
    const total = finite(totals[code]) ?? (free ?? 0) + (used ?? 0);
    const asset = assetCode(code);
    if ((total === 0 && !free && !used) || !ASSET.test(asset)) continue;
    const known = merged.get(asset);
    merged.set(asset, {
      asset,
      free: (known?.free ?? 0) + (free ?? 0),
      used: (known?.used ?? 0) + (used ?? 0),
      total: (known?.total ?? 0) + total,
    });
  }
  return [...merged.values()]
    .sort((a, b) => (a.asset < b.asset ? -1 : a.asset > b.asset ? 1 : 0))
    .slice(0, MAX_BALANCES);
}

function finite(value: unknown): number | undefined {
  const number = typeof value === 'string' ? Number(value) : value;
  return typeof number === 'number' && Number.isFinite(number) ? number : undefined;
}

const WITHDRAWING_API_KEY = {
  error: 'this API key can withdraw funds and must not: create a key with withdrawals disabled',
  warning: 'this API key can withdraw funds',
};

export interface PolicyOutcome {
  /** Set when the key must fail the test. */
  error?: string;
  warnings: string[];
}

/**
 * The platform's policy, the same on every exchange: a key that can withdraw fails (only warns
 * with ALLOW_WITHDRAWAL_KEYS=true); where the exchange does not tell, the test passes with a
 * warning. Testnet funds are not real, so a testnet key is never held to it. The IP rule
 * (ipRestrictionPolicy) is held with it; when both refuse the key, the error says both, so one new
 * key can mend them.
 */
export function withdrawalPolicy(
  permissions: KeyPermissions | null,
  input: Pick<
    ConnectionCheckInput,
    'environment' | 'allowWithdrawalKeys' | 'requireIpRestrictedKeys' | 'egressAddresses'
  >,
  wording: { error: string; warning: string } = WITHDRAWING_API_KEY,
): PolicyOutcome {
  if (input.environment === 'testnet') return { warnings: [] };
  const ip = ipRestrictionPolicy(permissions, input);
  const warnings = [...ip.warnings];
  const refuse = (error: string): PolicyOutcome => ({
    error: ip.error === undefined ? error : `${error}; ${ip.error}`,
    warnings,
  });
  const withdraw = permissions?.withdraw ?? null;
  if (withdraw === null) warnings.push(WITHDRAW_UNKNOWN);
  else if (withdraw && !input.allowWithdrawalKeys) return refuse(wording.error);
  else if (withdraw) warnings.push(wording.warning);
  return ip.error === undefined ? { warnings } : { error: ip.error, warnings };
}

/**
 * A mainnet key bound to no IP: a warning naming EGRESS_IPS to whitelist, or with
 * REQUIRE_IP_RESTRICTED_KEYS=true a refusal of a key that can trade (Binance deletes such keys; an
 * unknown trade permission counts as can, since nothing proves it can't). Where the exchange does
 * not tell, the requirement can only warn.
 */
function ipRestrictionPolicy(
  permissions: KeyPermissions | null,
  input: Pick<ConnectionCheckInput, 'requireIpRestrictedKeys' | 'egressAddresses'>,
): PolicyOutcome {
  const whitelist =
    input.egressAddresses.length > 0
      ? `: whitelist ${input.egressAddresses.join(', ')} on the key`
      : '';
  const ipRestricted = permissions?.ipRestricted ?? null;
  const trades = permissions?.trade !== false;
  if (ipRestricted === true) return { warnings: [] };
  if (!input.requireIpRestrictedKeys || !trades)
    return { warnings: ipRestricted === false ? [NOT_IP_RESTRICTED + whitelist] : [] };
  if (ipRestricted === null) return { warnings: [IP_RESTRICTION_UNKNOWN] };
  return {
    error: `this API key can trade and is not restricted to trusted IP addresses, which this service requires${whitelist || ': bind it to the addresses this service calls exchanges from'}`,
    warnings: [],
  };
}

const DAY_MS = 86_400_000;

/** The refusal of a key whose trading rights have ended; the date lets the user find which. */
export function keyExpired(expiresAt: Date): string {
  return `key expired: the exchange ended its trading rights at ${expiresAt.toISOString()}; create a new key`;
}

/**
 * A key's end of trading, which the exchange told (tradingExpiresAt): once passed, a test the
 * exchange let through fails as REJECTED (an expired key cannot trade, so its live wallets must
 * pause); within `warningDays` (KEY_EXPIRY_WARNING_DAYS) it passes with a warning naming the date,
 * so the user replaces it before trading stops.
 */
export function expiryPolicy(
  outcome: ConnectionCheckResult,
  now: Date,
  warningDays: number,
): ConnectionCheckResult {
  const expiresAt = outcome.permissions?.tradingExpiresAt;
  if (!outcome.ok || expiresAt === undefined) return outcome;
  if (expiresAt.getTime() <= now.getTime())
    return { ...outcome, ok: false, kind: 'rejected', error: keyExpired(expiresAt), balances: [] };
  if (expiresAt.getTime() - now.getTime() > warningDays * DAY_MS) return outcome;
  return {
    ...outcome,
    warnings: [
      ...outcome.warnings,
      `this key's trading rights end at ${expiresAt.toISOString()}: replace it before then, or trading on it stops`,
    ],
  };
}
