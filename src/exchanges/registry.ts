import { binanceFamilyProfile, binanceProfile } from './binance.connector';
import { bybitProfile } from './bybit.connector';
import { ccxtConnector, type ExchangeProfile } from './ccxt.connector';
import { coinbaseProfile } from './coinbase.connector';
import { PUBLIC_BALANCE_EXCHANGES } from './credentials';
import { failure, scrubResult, scrubSecrets } from './failures';
import { hyperliquidConnector } from './hyperliquid.connector';
import { krakenProfile } from './kraken.connector';
import { okxProfile } from './okx.connector';
import type { ConnectionCheckInput, ConnectionCheckResult, ExchangeConnector } from './types';

/**
 * What exchanges add to the generic test (their errors, their permission endpoints); the rest get
 * it plain.
 */
export const PROFILES: Readonly<Record<string, ExchangeProfile>> = {
  binance: binanceProfile,
  binanceus: binanceFamilyProfile,
  binanceusdm: binanceFamilyProfile,
  binancecoinm: binanceFamilyProfile,
  okx: okxProfile,
  myokx: okxProfile,
  okxus: okxProfile,
  kraken: krakenProfile,
  bybit: bybitProfile,
  bybiteu: bybitProfile,
  bybitid: bybitProfile,
  coinbase: coinbaseProfile,
};

/** Exchanges whose test is not the generic one. */
const SPECIAL: Readonly<Record<string, ExchangeConnector>> = {
  hyperliquid: hyperliquidConnector,
};

const connectors = new Map<string, ExchangeConnector>();

function connectorFor(ccxtId: string | null): ExchangeConnector {
  const id = ccxtId ?? '';
  if (Object.hasOwn(SPECIAL, id)) return SPECIAL[id];
  if (PUBLIC_BALANCE_EXCHANGES.has(id)) return publicLookup;
  let connector = connectors.get(id);
  if (connector === undefined)
    connectors.set(
      id,
      (connector = ccxtConnector(Object.hasOwn(PROFILES, id) ? PROFILES[id] : {})),
    );
  return connector;
}

/**
 * Their fetchBalance asks by address: it would pass any key, so the test says it proves nothing.
 */
const publicLookup: ExchangeConnector = {
  check(input) {
    return Promise.resolve(
      failure(
        'untestable',
        `a connection test can't prove a ${input.ccxtId} key: the exchange's balance look-up is public, by address, and proves nothing about the key`,
      ),
    );
  },
};

/**
 * Tests a credential against its exchange. Exchange and network problems come back as `ok: false`
 * with a kind and a message, and so does any error once the exchange has answered (see
 * explainFailure); only a bug before any answer is thrown, with every input value scrubbed from
 * it, so the caller logs it and answers INTERNAL_SERVER_ERROR.
 */
export async function checkConnection(input: ConnectionCheckInput): Promise<ConnectionCheckResult> {
  let result: ConnectionCheckResult;
  try {
    result = await connectorFor(input.ccxtId).check(input);
  } catch (error) {
    throw unexpectedFailure(input, error);
  }
  return scrubResult(result, input.values);
}

function unexpectedFailure(input: ConnectionCheckInput, error: unknown): Error {
  const original = error instanceof Error ? error : new Error(String(error));
  const wrapped = new Error(
    `the ${input.ccxtId ?? 'unnamed'} connection check failed unexpectedly: ${scrubSecrets(original.message, input.values)}`,
  );
  // No `cause`: loggers serialise it, and the original message may hold a secret.
  wrapped.stack = `${wrapped.stack ?? wrapped.message}\nCaused by: ${scrubSecrets(original.stack ?? original.message, input.values)}`;
  return wrapped;
}
