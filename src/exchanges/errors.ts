import type { Ccxt } from './hosts';
import type { ConnectionCheckResult } from './types';

export const CREDENTIALS_REJECTED = 'the exchange rejected the credentials';

export interface ErrorContext {
  timeoutMs: number;
  /** Exchange error codes that mean "bad credentials" whatever class ccxt picked for them. */
  credentialCodes?: ReadonlySet<number>;
}

export function failure(error: string, warnings: string[] = []): ConnectionCheckResult {
  return { ok: false, error, warnings };
}

/**
 * A fixed message for a ccxt error or a transport error; null for anything else (a bug, not an
 * exchange or network problem). Never passes on text from the exchange: ccxt's messages embed
 * response bodies and URLs. Subclasses are tested before their parents: PermissionDenied is an
 * AuthenticationError; RequestTimeout, the rate limits and InvalidNonce are NetworkErrors.
 */
export function describeExchangeError(ccxt: Ccxt, error: unknown, context: ErrorContext): string | null {
  if (error instanceof ccxt.BaseError) {
    const code = exchangeErrorCode(error.message);
    if (code !== undefined && context.credentialCodes?.has(code)) return CREDENTIALS_REJECTED;
    if (error instanceof ccxt.PermissionDenied) return 'the API key lacks a permission the check needs';
    if (error instanceof ccxt.AuthenticationError) return CREDENTIALS_REJECTED;
    if (error instanceof ccxt.RequestTimeout) return `the exchange did not answer within ${seconds(context.timeoutMs)} s`;
    if (error instanceof ccxt.RateLimitExceeded || error instanceof ccxt.DDoSProtection) {
      return 'the exchange is rate limiting us; try again later';
    }
    // Binance -1021: a NetworkError to ccxt, but retrying from the same clock will not help.
    if (error instanceof ccxt.InvalidNonce) return "the exchange rejected the request's timestamp; check this server's clock";
    // Includes ExchangeNotAvailable (HTTP 5xx, 403, 451 ...) and OnMaintenance.
    if (error instanceof ccxt.NetworkError) return 'the exchange could not be reached';
    return code === undefined ? 'the exchange returned an error' : `the exchange returned an error (code ${code})`;
  }
  // ccxt rethrows transport errors it does not recognise as they are (EHOSTUNREACH, TLS certificate errors ...).
  if (isTransportError(error)) return 'the exchange could not be reached';
  return null;
}

/** The numeric `code` of an exchange's JSON error body embedded in a ccxt message; only digits are taken from it. */
export function exchangeErrorCode(message: string): number | undefined {
  const match = /"code"\s*:\s*"?(-?\d{1,9})\b/.exec(message);
  return match ? Number(match[1]) : undefined;
}

// Duck-typed rather than `instanceof Error`: under jest, ccxt and its errors live in another realm (see loadCcxt).
function isTransportError(error: unknown): boolean {
  if (typeof error !== 'object' || error === null || !('code' in error) || typeof error.code !== 'string') return false;
  const code = error.code;
  if (code.startsWith('UND_ERR_') || code.startsWith('ERR_TLS_') || code.startsWith('ERR_SSL_') || code.includes('CERT')) return true;
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
  const forms = new Set([value, value.trim(), encodeURIComponent(value), encodeURIComponent(value.trim())]);
  const hex = /^(0x)?([0-9a-f]+)$/i.exec(value.trim());
  if (hex) forms.add(hex[2]);
  return [...forms].filter((form) => form.length >= MIN_SCRUBBED_LENGTH);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export function scrubResult(result: ConnectionCheckResult, values: Record<string, string>): ConnectionCheckResult {
  return {
    ok: result.ok,
    ...(result.error === undefined ? {} : { error: scrubSecrets(result.error, values) }),
    warnings: result.warnings.map((warning) => scrubSecrets(warning, values)),
  };
}
