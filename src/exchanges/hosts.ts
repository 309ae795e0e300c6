import type { Exchange } from 'ccxt';
import type { ConnectionCheckInput } from './types';

export type Ccxt = typeof import('ccxt');

let ccxt: Ccxt | undefined;

/**
 * ccxt weighs ~100 MB once loaded: the service pays for it only when a first check needs it.
 * It is loaded through Node's own loader, fetched with getBuiltinModule because jest replaces both
 * `require` and `node:module`: ccxt's crypto dependencies (@noble/*) are ES modules, which Node
 * 20.19+ can require but jest's module registry cannot. Outside jest this is a plain require.
 */
export function loadCcxt(): Ccxt {
  ccxt ??= process.getBuiltinModule('node:module').createRequire(__filename)('ccxt') as Ccxt;
  return ccxt;
}

export type BaseUrlResolution = { url: URL } | { error: string };

/** The configured base URL for the input's environment, or why it cannot be used. */
export function resolveBaseUrl(input: Pick<ConnectionCheckInput, 'baseUrl' | 'environment'>): BaseUrlResolution {
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
  // The rewrite keeps only origin and path: user info, query and fragment would be dropped silently.
  if (url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '') {
    return { error: 'the configured base URL must not contain a user name, password, query or fragment' };
  }
  return { url };
}

/** `hostname` as the URL parser normalises it: IPv4 in dotted decimal, IPv6 in brackets, lower case. */
export function isLoopbackHost(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname);
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

/**
 * ccxt's own timer stops once response headers arrive; a body that never ends would then wait for
 * undici's five-minute body timeout. This bounds the whole call.
 */
export async function withDeadline<T>(ccxt: Ccxt, work: Promise<T>, timeoutMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ccxt.RequestTimeout(`no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

interface Destroyable {
  destroy(): Promise<void>;
}

/**
 * Each instance keeps its own undici agent with 60 s keep-alive sockets; a one-off check must not
 * leave them (or a request still hanging) behind. `close()` only handles websockets.
 */
export async function releaseExchange(exchange: Exchange): Promise<void> {
  const dispatcher: unknown = exchange.fetchDispatcher;
  if (isDestroyable(dispatcher)) await dispatcher.destroy();
}

function isDestroyable(value: unknown): value is Destroyable {
  return isRecord(value) && typeof value.destroy === 'function';
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
