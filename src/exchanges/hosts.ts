import { isIP } from 'node:net';
import type { Exchange } from 'ccxt';
import { addressRefusal } from './guard';
import { nodeRequire } from './node-require';
import type { ConnectionCheckInput, OutboundPolicy } from './types';

export type Ccxt = typeof import('ccxt');

let ccxt: Ccxt | undefined;

/**
 * ccxt weighs ~100 MB once loaded: the service pays for it only when a first check (or template)
 * needs it.
 */
export function loadCcxt(): Ccxt {
  ccxt ??= nodeRequire('ccxt') as Ccxt;
  return ccxt;
}

let exchangeIds: ReadonlySet<string> | undefined;

/** The ids of every exchange ccxt supports (its `exchanges`, a list at run time). */
export function ccxtExchangeIds(): ReadonlySet<string> {
  if (exchangeIds === undefined) {
    const listed: unknown = loadCcxt().exchanges;
    exchangeIds = new Set(
      Array.isArray(listed)
        ? listed.filter((id): id is string => typeof id === 'string')
        : Object.keys(listed as object),
    );
  }
  return exchangeIds;
}

export type BaseUrlResolution = { url: URL } | { error: string };

/**
 * The configured base URL for the input's environment, or why it cannot be used. A host that is
 * an IP address is checked here already; names are checked when they are resolved (guard.ts).
 */
export function resolveBaseUrl(
  input: Pick<ConnectionCheckInput, 'baseUrl' | 'environment'>,
  policy: Pick<OutboundPolicy, 'allowLoopback'>,
): BaseUrlResolution {
  if (input.baseUrl === null || input.baseUrl.trim() === '') {
    return { error: `no ${input.environment} URL is configured for this exchange` };
  }
  let url: URL;
  try {
    url = new URL(input.baseUrl.trim());
  } catch {
    return { error: 'the configured base URL is not a valid URL' };
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    return { error: 'the configured base URL must use https' };
  }
  if (url.protocol === 'http:' && !isLoopbackHost(url.hostname)) {
    return { error: 'plain http is only allowed for loopback hosts' };
  }
  // The rewrite keeps only origin and path: user info, query and fragment would be dropped
  // silently.
  if (url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '') {
    return {
      error: 'the configured base URL must not contain a user name, password, query or fragment',
    };
  }
  const literal = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const refusal = isIP(literal) === 0 ? null : addressRefusal(literal, policy);
  if (refusal !== null) return { error: refusal };
  return { url };
}

/**
 * `hostname` as the URL parser normalises it: IPv4 in dotted decimal, IPv6 in brackets, lower case.
 */
export function isLoopbackHost(hostname: string): boolean {
  return (
    hostname === 'localhost' ||
    hostname === '[::1]' ||
    /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname)
  );
}

/**
 * Moves one ccxt API URL onto the base URL: the origin is replaced and the base path prefixed, so
 * `https://api.binance.com/api/v3` with base `http://127.0.0.1:5555/proxy` becomes
 * `http://127.0.0.1:5555/proxy/api/v3`.
 */
export function rebaseUrl(apiUrl: string, base: URL): string {
  const target = new URL(apiUrl);
  const prefix = base.pathname.replace(/\/+$/, '');
  // `new URL('https://host').pathname` is '/', but ccxt appends '/' + path itself.
  const path = target.pathname === '/' && !apiUrl.endsWith('/') ? '' : target.pathname;
  return base.origin + prefix + path + target.search;
}

/**
 * Points every URL in the instance's `urls.api` (a nested object) at the base URL, so no request of
 * this instance can go to ccxt's built-in hosts.
 */
export function pointAtBaseUrl(exchange: Exchange, base: URL): void {
  rebaseTree(exchange.urls.api, (apiUrl) => rebaseUrl(exchange.implodeHostname(apiUrl), base));
}

function rebaseTree(tree: Record<string, unknown>, rebase: (apiUrl: string) => string): void {
  for (const [key, value] of Object.entries(tree)) {
    if (typeof value === 'string') tree[key] = rebase(value);
    else if (isRecord(value)) rebaseTree(value, rebase);
  }
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
