import type { Ccxt } from './hosts';
import type { ConnectionCheckResult, FailureKind, KeyPermissions } from './types';

export const CREDENTIALS_REJECTED = 'the exchange rejected the credentials';
export const KEY_UNKNOWN = 'the exchange does not know this key';
export const IP_NOT_ALLOWED = "this server's IP address is not on the key's allow-list";
export const UNEXPECTED_ANSWER = 'the exchange returned an unexpected answer';
export const CLOCK_REJECTED =
  "the exchange rejected the request's timestamp; check this server's clock";

/**
 * Where ccxt maps an exchange's answer to a class that says the wrong thing (Kraken's invalid
 * signature arrives as a plain ExchangeError), a matcher on ccxt's message (which embeds the
 * exchange's body) says what it is. Only the match is used, never the text.
 */
export interface ErrorMatcher {
  pattern: RegExp;
  kind: FailureKind;
  message: string;
}

/** Thrown by a check that got an answer of a shape it does not know. */
export class UnexpectedAnswerError extends Error {
  constructor() {
    super(UNEXPECTED_ANSWER);
  }
}

export interface Failure {
  kind: FailureKind;
  message: string;
}

export interface ErrorContext {
  timeoutMs: number;
  matchers?: readonly ErrorMatcher[];
}

export function failure(
  kind: FailureKind,
  error: string,
  extra: { warnings?: string[]; permissions?: KeyPermissions | null } = {},
): ConnectionCheckResult {
  return {
    ok: false,
    kind,
    error,
    warnings: extra.warnings ?? [],
    balances: [],
    permissions: extra.permissions ?? null,
  };
}

/**
 * A fixed message for a ccxt error or a transport error; null for anything else (a bug, not an
 * exchange or network problem). Never passes on text from the exchange: ccxt's messages embed
 * response bodies and URLs. Subclasses are tested before their parents: PermissionDenied,
 * AccountSuspended and AccountNotEnabled are AuthenticationErrors; RequestTimeout, the rate
 * limits, ExchangeNotAvailable, OnMaintenance and InvalidNonce are NetworkErrors.
 */
export function describeExchangeError(
  ccxt: Ccxt,
  error: unknown,
  context: ErrorContext,
): Failure | null {
  if (error instanceof UnexpectedAnswerError)
    return { kind: 'unreachable', message: UNEXPECTED_ANSWER };
  if (error instanceof ccxt.BaseError) {
    const matched = context.matchers?.find((matcher) => matcher.pattern.test(error.message));
    if (matched) return { kind: matched.kind, message: matched.message };
    // AccountNotEnabled is a PermissionDenied to ccxt, but the account, not a permission, is what
    // is missing.
    if (error instanceof ccxt.AccountNotEnabled)
      return { kind: 'rejected', message: CREDENTIALS_REJECTED };
    if (error instanceof ccxt.PermissionDenied)
      return { kind: 'rejected', message: 'the API key lacks a permission the check needs' };
    if (error instanceof ccxt.AuthenticationError)
      return { kind: 'rejected', message: CREDENTIALS_REJECTED };
    if (error instanceof ccxt.RequestTimeout)
      return {
        kind: 'unreachable',
        message: `the exchange did not answer within ${seconds(context.timeoutMs)} s`,
      };
    if (error instanceof ccxt.RateLimitExceeded || error instanceof ccxt.DDoSProtection) {
      return { kind: 'unreachable', message: 'the exchange is rate limiting us; try again later' };
    }
    // Binance -1021: a NetworkError to ccxt, but retrying from the same clock will not help.
    if (error instanceof ccxt.InvalidNonce) return { kind: 'unreachable', message: CLOCK_REJECTED };
    // Includes ExchangeNotAvailable (HTTP 5xx, and 400/403 that ccxt could not read) and
    // OnMaintenance.
    if (error instanceof ccxt.NetworkError)
      return { kind: 'unreachable', message: 'the exchange could not be reached' };
    // Nothing here says the key is bad: an answer we do not understand.
    const code = exchangeErrorCode(error.message);
    return {
      kind: 'unreachable',
      message:
        code === undefined
          ? 'the exchange returned an error'
          : `the exchange returned an error (code ${code})`,
    };
  }
  if (isHttpParserError(error)) return { kind: 'unreachable', message: UNEXPECTED_ANSWER };
  // ccxt rethrows transport errors it does not recognise as they are (EHOSTUNREACH, TLS certificate
  // errors ...).
  if (isTransportError(error))
    return { kind: 'unreachable', message: 'the exchange could not be reached' };
  return null;
}

/**
 * The numeric `code` of an exchange's JSON error body embedded in a ccxt message; only digits are
 * taken from it.
 */
export function exchangeErrorCode(message: string): number | undefined {
  const match = /"(?:code|retCode)"\s*:\s*"?(-?\d{1,9})\b/.exec(message);
  return match ? Number(match[1]) : undefined;
}

/**
 * A matcher for a JSON error body's numeric code: `"code": -2015`, `"code":"50111"`,
 * `"retCode":10003`.
 */
export function codeIs(code: number, field = 'code'): RegExp {
  return new RegExp(`"${field}"\\s*:\\s*"?${code}(?![0-9])`);
}

// Duck-typed rather than `instanceof Error`: under jest, ccxt and its errors live in another realm
// (see loadCcxt).
function errorCode(error: unknown): string | undefined {
  return typeof error === 'object' &&
    error !== null &&
    'code' in error &&
    typeof error.code === 'string'
    ? error.code
    : undefined;
}

/**
 * undici's HTTPParserError, which ccxt rethrows as it is: what came back is not HTTP. Its code is
 * often unset, and its `data` holds the bytes that came.
 */
function isHttpParserError(error: unknown): boolean {
  return (
    errorCode(error)?.startsWith('HPE_') === true ||
    (typeof error === 'object' &&
      error !== null &&
      'name' in error &&
      error.name === 'HTTPParserError')
  );
}

function isTransportError(error: unknown): boolean {
  const code = errorCode(error);
  if (code === undefined) return false;
  if (
    code.startsWith('UND_ERR_') ||
    code.startsWith('ERR_TLS_') ||
    code.startsWith('ERR_SSL_') ||
    code.includes('CERT')
  )
    return true;
  // POSIX errno names (ECONNRESET, EHOSTUNREACH, EAI_AGAIN ...), not Node's ERR_* argument errors.
  return /^E[A-Z_]+$/.test(code) && !code.startsWith('ERR_');
}

function seconds(ms: number): string {
  return String(Math.round(ms / 100) / 10);
}

/** Values this short cannot be secrets, and scrubbing them would garble ordinary words. */
const MIN_SCRUBBED_LENGTH = 4;

/**
 * Second line of defence: removes every input value from a message, as given, URL-encoded, and for
 * hex strings with or without `0x` in any letter case (exchanges echo addresses in lower case).
 */
export function scrubSecrets(text: string, values: Record<string, string>): string {
  let scrubbed = text;
  for (const value of Object.values(values)) {
    for (const form of secretForms(value)) {
      scrubbed = scrubbed.replace(new RegExp(escapeRegExp(form), 'gi'), '[redacted]');
    }
  }
  return scrubbed;
}

function secretForms(value: string): string[] {
  const forms = new Set([
    value,
    value.trim(),
    encodeURIComponent(value),
    encodeURIComponent(value.trim()),
  ]);
  const hex = /^(0x)?([0-9a-f]+)$/i.exec(value.trim());
  if (hex) forms.add(hex[2]);
  return [...forms].filter((form) => form.length >= MIN_SCRUBBED_LENGTH);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export function scrubResult(
  result: ConnectionCheckResult,
  values: Record<string, string>,
): ConnectionCheckResult {
  return {
    ...result,
    ...(result.error === undefined ? {} : { error: scrubSecrets(result.error, values) }),
    warnings: result.warnings.map((warning) => scrubSecrets(warning, values)),
  };
}
