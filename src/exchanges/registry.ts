import { binanceConnector } from './binance.connector';
import { scrubResult, scrubSecrets } from './errors';
import { hyperliquidConnector } from './hyperliquid.connector';
import type { ConnectionCheckInput, ConnectionCheckResult, ExchangeConnector } from './types';

const connectors: ReadonlyMap<string, ExchangeConnector> = new Map([
  ['binance', binanceConnector],
  ['hyperliquid', hyperliquidConnector],
]);

/**
 * Tests a credential against its exchange. Exchange and network problems come back as `ok: false`
 * with a message; only a bug (an error that is neither ccxt's nor the network's) is thrown, with
 * every input value scrubbed from it, so the caller logs it and answers INTERNAL_SERVER_ERROR.
 */
export async function checkConnection(input: ConnectionCheckInput): Promise<ConnectionCheckResult> {
  const connector = connectors.get(input.slug);
  if (connector === undefined) {
    return scrubResult({ ok: false, error: `no connection test exists for exchange "${input.slug}" yet`, warnings: [] }, input.values);
  }
  let result: ConnectionCheckResult;
  try {
    result = await connector.check(input);
  } catch (error) {
    throw unexpectedFailure(input, error);
  }
  return scrubResult(result, input.values);
}

function unexpectedFailure(input: ConnectionCheckInput, error: unknown): Error {
  const original = error instanceof Error ? error : new Error(String(error));
  const wrapped = new Error(`the ${input.slug} connection check failed unexpectedly: ${scrubSecrets(original.message, input.values)}`);
  // No `cause`: loggers serialise it, and the original message may hold a secret.
  wrapped.stack = `${wrapped.stack ?? wrapped.message}\nCaused by: ${scrubSecrets(original.stack ?? original.message, input.values)}`;
  return wrapped;
}
