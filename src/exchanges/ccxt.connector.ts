import type { Balances, Exchange } from 'ccxt';
import type { RequestBudget } from './budget';
import { CcxtCredential, describeCredential, isCcxtCredential } from './credentials';
import {
  CREDENTIALS_REJECTED,
  describeExchangeError,
  failure,
  UNEXPECTED_ANSWER,
  type ErrorMatcher,
} from './failures';
import { nonZeroBalances, withdrawalPolicy } from './findings';
import { ANSWER_TOO_LARGE, createOutboundGuard, type OutboundGuard } from './guard';
import { ccxtExchangeIds, loadCcxt, pointAtBaseUrl, resolveBaseUrl, type Ccxt } from './hosts';
import type {
  ConnectionCheckInput,
  ConnectionCheckResult,
  ExchangeConnector,
  KeyPermissions,
} from './types';

export interface CheckContext {
  ccxt: Ccxt;
  exchange: Exchange;
  input: ConnectionCheckInput;
  /** Bounds a call by what is left of the check's time (see withinDeadline). */
  within: <T>(work: Promise<T>) => Promise<T>;
}

/** What one exchange adds to the generic test. */
export interface ExchangeProfile {
  matchers?: readonly ErrorMatcher[];
  /** What the key may do, after its balance proved it; null where the exchange does not tell. */
  permissions?(context: CheckContext): Promise<KeyPermissions | null>;
  /**
   * The asset code users know, for an exchange whose balance codes ccxt can't map without its
   * markets.
   */
  assetCode?: (code: string) => string;
}

export interface PreparedCheck extends CheckContext {
  guard: OutboundGuard;
}

type ExchangeClass = new (config: Record<string, unknown>) => Exchange;

/** The credential's values under ccxt's names, from the definition's auth fields. */
export function ccxtCredentials(
  input: Pick<ConnectionCheckInput, 'fields' | 'values'>,
): Partial<Record<CcxtCredential, string>> {
  const credentials: Partial<Record<CcxtCredential, string>> = {};
  for (const field of input.fields) {
    const value = Object.hasOwn(input.values, field.key) ? input.values[field.key] : undefined;
    if (field.ccxtCredential !== null && value !== undefined && value.trim() !== '')
      credentials[field.ccxtCredential] = value;
  }
  return credentials;
}

/**
 * ccxt's class for the input's exchange with the mapped credentials, in sandbox mode for the
 * testnet (on OKX and Hyperliquid that changes headers and signing, not only URLs), every API URL
 * pointed at the definition's origin, the markets preset as empty (so a balance is one signed
 * request, not a market download first), and every request through the outbound guard.
 */
export function prepareCheck(
  input: ConnectionCheckInput,
  derived: readonly CcxtCredential[] = [],
): PreparedCheck | { failure: ConnectionCheckResult } {
  if (input.ccxtId === null)
    return {
      failure: failure(
        'untestable',
        'no connection test exists for this exchange: its definition names no ccxt exchange',
      ),
    };
  const ccxt = loadCcxt();
  if (!ccxtExchangeIds().has(input.ccxtId))
    return {
      failure: failure(
        'untestable',
        `no connection test exists for this exchange: ccxt has no exchange "${input.ccxtId}"`,
      ),
    };
  const credentials = ccxtCredentials(input);
  const Exchange = (ccxt as unknown as Record<string, ExchangeClass>)[input.ccxtId];
  const exchange = new Exchange({
    ...credentials,
    timeout: input.timeoutMs,
    // ccxt's own limiter is per object, so per test: the budget (input.budget) replaces it.
    enableRateLimit: input.budget !== undefined,
  });

  for (const [name, required] of Object.entries(
    exchange.requiredCredentials as Record<string, boolean>,
  )) {
    if (
      !required ||
      !isCcxtCredential(name) ||
      credentials[name] !== undefined ||
      derived.includes(name)
    )
      continue;
    const field = input.fields.find((f) => f.ccxtCredential === name);
    return {
      failure: field
        ? failure('rejected', `the credential has no ${field.key}`)
        : failure(
            'untestable',
            `this exchange's definition has no field for ${describeCredential(name)}`,
          ),
    };
  }
  const base = resolveBaseUrl(input, input.network);
  if ('error' in base) return { failure: failure('untestable', base.error) };

  // An exchange ccxt knows no testnet of is tested against the configured testnet URL as it is.
  if (input.environment === 'testnet' && exchange.urls.test !== undefined)
    exchange.setSandboxMode(true);
  pointAtBaseUrl(exchange, base.url);
  exchange.setMarkets([]);
  const guard = createOutboundGuard(base.url.origin, input.network);
  const deadline: Deadline = { at: Date.now() + input.timeoutMs, waiting: 0, waitingSince: 0 };
  exchange.fetchImplementation = input.budget
    ? drawingOn(exchange, input.budget, guard.fetch, deadline)
    : guard.fetch;
  return {
    ccxt,
    exchange,
    input,
    guard,
    within: (work) => withinDeadline(ccxt, work, deadline, input.timeoutMs),
  };
}

/**
 * The end of a check's time, which stands still while the check waits for the exchange's budget
 * (`waiting` takes under way, since `waitingSince`): the exchange's time to answer stays
 * EXCHANGE_TIMEOUT_MS.
 */
interface Deadline {
  at: number;
  waiting: number;
  waitingSince: number;
}

function leftOf(deadline: Deadline): number {
  const paused = deadline.waiting > 0 ? Date.now() - deadline.waitingSince : 0;
  return deadline.at + paused - Date.now();
}

/**
 * Every request of the check takes its share of the exchange's budget first. ccxt's throttle hook
 * runs before a request is signed (on the exchanges that sign there; Hyperliquid's action nonce is
 * signed before, and allows far more than the wait) and before ccxt's own timer starts; a request
 * sent some other way draws in the fetch.
 */
function drawingOn(
  exchange: Exchange,
  budget: RequestBudget,
  fetch: OutboundGuard['fetch'],
  deadline: Deadline,
): OutboundGuard['fetch'] {
  let drawn = 0;
  const take = async () => {
    if (deadline.waiting++ === 0) deadline.waitingSince = Date.now();
    try {
      await budget.take();
    } finally {
      if (--deadline.waiting === 0) deadline.at += Date.now() - deadline.waitingSince;
    }
  };
  exchange.throttle = async () => {
    await take();
    drawn++;
  };
  return async (url, init) => {
    if (drawn > 0) drawn--;
    else await take();
    return fetch(url, init);
  };
}

/**
 * ccxt's own timer stops once response headers arrive; a body that never ends would then wait for
 * undici's five-minute body timeout. This bounds every call of a check by one deadline.
 */
async function withinDeadline<T>(
  ccxt: Ccxt,
  work: Promise<T>,
  deadline: Deadline,
  timeoutMs: number,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    // Re-armed while waits for the budget move the deadline.
    const arm = () => {
      const left = leftOf(deadline);
      if (left > 0) timer = setTimeout(arm, left);
      else reject(new ccxt.RequestTimeout(`no answer within ${timeoutMs} ms`));
    };
    arm();
  });
  try {
    return await Promise.race([work, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A refused request, an answer too large, a ccxt or transport error, or any error once the
 * exchange has answered, as a result; anything else (a bug before any answer) is thrown on.
 */
export function explainFailure(
  check: PreparedCheck,
  error: unknown,
  matchers?: readonly ErrorMatcher[],
): ConnectionCheckResult {
  if (check.guard.refusal !== undefined) return failure('untestable', check.guard.refusal);
  if (check.guard.tooLarge) return failure('unreachable', ANSWER_TOO_LARGE);
  const described = describeExchangeError(check.ccxt, error, {
    timeoutMs: check.input.timeoutMs,
    matchers,
  });
  if (described !== null) return failure(described.kind, described.message);
  // ccxt's binance reads a non-numeric error code as a BigInt, for one: the answer broke the
  // reading, and the error's message quotes it.
  const httpStatus = check.guard.statuses.at(-1);
  if (httpStatus === undefined) throw error;
  return {
    ...failure('unreachable', UNEXPECTED_ANSWER),
    unreadable: { errorClass: errorClass(error), httpStatus },
  };
}

/** The name of the error's constructor: code's, not the exchange's. */
function errorClass(error: unknown): string {
  if (typeof error !== 'object' || error === null) return typeof error;
  const constructor = (error as { constructor?: unknown }).constructor;
  return typeof constructor === 'function' && /^[A-Za-z_$][\w$]{0,63}$/.test(constructor.name)
    ? constructor.name
    : 'unknown';
}

/**
 * An answer ccxt let through although its status says it failed (an exchange whose error bodies
 * ccxt does not read): a 401 refuses the key, anything else says nothing about it.
 */
export function unexpectedStatus(statuses: readonly number[]): ConnectionCheckResult | null {
  const bad = statuses.filter((status) => status < 200 || status >= 300);
  if (bad.length === 0) return null;
  return bad.includes(401)
    ? failure('rejected', CREDENTIALS_REJECTED)
    : failure('unreachable', UNEXPECTED_ANSWER);
}

/**
 * A request stamped outside the exchange's receive window is retried once with ccxt's time
 * difference to the exchange's clock (fetchTime, a public call).
 */
async function fetchBalanceCorrectingClock(
  check: PreparedCheck,
): Promise<{ balance: Balances; statuses: readonly number[] }> {
  const { ccxt, exchange, guard, within } = check;
  try {
    return { balance: await within(exchange.fetchBalance()), statuses: [...guard.statuses] };
  } catch (error) {
    if (!(error instanceof ccxt.InvalidNonce) || exchange.has.fetchTime !== true) throw error;
    await within(exchange.loadTimeDifference());
    const seen = guard.statuses.length;
    const balance = await within(exchange.fetchBalance());
    return { balance, statuses: guard.statuses.slice(seen) };
  }
}

/** The test for any exchange ccxt speaks: a signed fetchBalance, then what the profile adds. */
export function ccxtConnector(profile: ExchangeProfile = {}): ExchangeConnector {
  return {
    async check(input) {
      const check = prepareCheck(input);
      if ('failure' in check) return check.failure;
      try {
        const { balance, statuses } = await fetchBalanceCorrectingClock(check);
        const unexpected = unexpectedStatus(statuses);
        if (unexpected) return unexpected;
        const permissions = profile.permissions ? await profile.permissions(check) : null;
        const policy = withdrawalPolicy(permissions, input);
        if (policy.error !== undefined)
          return failure('rejected', policy.error, { warnings: policy.warnings, permissions });
        return {
          ok: true,
          kind: 'ok',
          warnings: policy.warnings,
          balances: nonZeroBalances(balance, profile.assetCode),
          permissions,
        };
      } catch (error) {
        return explainFailure(check, error, profile.matchers);
      } finally {
        await check.guard.close();
      }
    },
  };
}
