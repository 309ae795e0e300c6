import { lookup as systemLookup } from 'node:dns/promises';
import { STATUS_CODES } from 'node:http';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import type { buildConnector as BuildConnector, Dispatcher } from 'undici';
import { nodeRequire } from './node-require';
import type { OutboundPolicy, Resolver } from './types';

type Undici = typeof import('undici');

let undici: Undici | undefined;

/**
 * Through Node's own loader, like ccxt (see loadCcxt): the responses go to ccxt, in Node's realm.
 */
function loadUndici(): Undici {
  undici ??= nodeRequire('undici') as Undici;
  return undici;
}

const systemResolver: Resolver = (hostname) =>
  systemLookup(hostname, { all: true, verbatim: true });

export type AddressClass =
  'metadata' | 'loopback' | 'link-local' | 'unique-local' | 'private' | 'reserved';

/** Checked in this order, so a metadata address is named as such and not as link-local. */
const RANGES: ReadonlyArray<[AddressClass, ReadonlyArray<[string, number]>]> = [
  // AWS, GCP, Azure, OpenStack (169.254.169.254), AWS over IPv6, Alibaba Cloud.
  [
    'metadata',
    [
      ['169.254.169.254', 32],
      ['fd00:ec2::254', 128],
      ['100.100.100.200', 32],
    ],
  ],
  [
    'loopback',
    [
      ['127.0.0.0', 8],
      ['::1', 128],
    ],
  ],
  [
    'link-local',
    [
      ['169.254.0.0', 16],
      ['fe80::', 10],
    ],
  ],
  ['unique-local', [['fc00::', 7]]],
  [
    'private',
    [
      ['10.0.0.0', 8],
      ['172.16.0.0', 12],
      ['192.168.0.0', 16],
      ['100.64.0.0', 10],
      // Site-local, deprecated but still routed inside some networks.
      ['fec0::', 10],
      // NAT64 for local use (RFC 8215): whatever IPv4 it embeds, the translator is the network's.
      ['64:ff9b:1::', 48],
    ],
  ],
  [
    'reserved',
    [
      ['0.0.0.0', 8],
      ['192.0.0.0', 24],
      ['192.0.2.0', 24],
      ['198.18.0.0', 15],
      ['198.51.100.0', 24],
      ['203.0.113.0', 24],
      ['224.0.0.0', 4],
      ['240.0.0.0', 4],
      // The 6to4 relays' anycast, deprecated.
      ['192.88.99.0', 24],
      // The unspecified address and the deprecated IPv4-compatible addresses (::a.b.c.d).
      ['::', 96],
      ['100::', 64],
      // Teredo and 6to4 tunnel to an IPv4 address they embed, which may be a private one.
      ['2001::', 32],
      ['2002::', 16],
      ['2001:db8::', 32],
      ['ff00::', 8],
    ],
  ],
];

const BLOCK_LISTS: ReadonlyArray<[AddressClass, BlockList]> = RANGES.map(([name, ranges]) => {
  const list = new BlockList();
  for (const [network, prefix] of ranges)
    list.addSubnet(network, prefix, network.includes(':') ? 'ipv6' : 'ipv4');
  return [name, list];
});

const DESCRIPTIONS: Readonly<Record<AddressClass, string>> = {
  metadata: 'a cloud metadata address',
  loopback: 'a loopback address',
  'link-local': 'a link-local address',
  'unique-local': 'a unique-local (private) IPv6 address',
  private: 'a private network address',
  reserved: 'a reserved, non-routable address',
};

export const ORIGIN_REFUSED =
  "the exchange's library tried to reach a URL outside the exchange's configured origin: it was refused and nothing was sent";
export const REDIRECT_REFUSED =
  'the exchange answered with a redirect, which a connection test does not follow';

/**
 * The most a check reads of one answer. A balance listing every asset of an exchange, or a key's
 * permissions, is tens of kilobytes: an answer past this is none a check needs, and reading it on
 * would hold all of it in memory.
 */
export const MAX_ANSWER_BYTES = 4 * 1024 * 1024;
export const ANSWER_TOO_LARGE = `the exchange's answer was larger than ${MAX_ANSWER_BYTES / 1024 / 1024} MB: the test stopped reading it`;

/**
 * Null for an address a connection test may reach: a public one. An IPv6 address that stands for
 * an IPv4 one (IPv4-mapped, IPv4-translated, or in the well-known NAT64 prefix) counts as that
 * IPv4 address.
 */
export function classifyAddress(address: string): AddressClass | null {
  const family = isIP(address);
  if (family === 0) return 'reserved';
  const ipv4 = family === 6 ? embeddedIpv4(address) : undefined;
  const [checked, type] =
    ipv4 === undefined ? [address, family === 4 ? 'ipv4' : 'ipv6'] : [ipv4, 'ipv4'];
  for (const [name, list] of BLOCK_LISTS) {
    if (list.check(checked, type as 'ipv4' | 'ipv6')) return name;
  }
  return null;
}

/**
 * The IPv4 address of ::ffff:a.b.c.d (mapped), ::ffff:0:a.b.c.d (translated, RFC 2765) and
 * 64:ff9b::a.b.c.d (NAT64, RFC 6052), in whichever form they are written; undefined for any other.
 */
function embeddedIpv4(address: string): string | undefined {
  const groups = expandIpv6(address);
  if (groups === undefined) return undefined;
  const zero = (from: number, to: number) => groups.slice(from, to).every((g) => g === 0);
  const mapped = zero(0, 5) && groups[5] === 0xffff;
  const translated = zero(0, 4) && groups[4] === 0xffff && groups[5] === 0;
  const nat64 = groups[0] === 0x64 && groups[1] === 0xff9b && zero(2, 6);
  if (!mapped && !translated && !nat64) return undefined;
  return [groups[6] >> 8, groups[6] & 0xff, groups[7] >> 8, groups[7] & 0xff].join('.');
}

function expandIpv6(address: string): number[] | undefined {
  let text = address.toLowerCase();
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number);
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const missing = 8 - left.length - right.length;
  if (tail === undefined ? missing !== 0 : missing < 1) return undefined;
  return [...left, ...Array<string>(tail === undefined ? 0 : missing).fill('0'), ...right].map(
    (group) => parseInt(group, 16),
  );
}

/** Why the address may not be reached under the policy; null when it may. */
export function addressRefusal(
  address: string,
  policy: Pick<OutboundPolicy, 'allowLoopback'>,
): string | null {
  const found = classifyAddress(address);
  if (found === null || (found === 'loopback' && policy.allowLoopback)) return null;
  return `the exchange's address is ${DESCRIPTIONS[found]}: requests there are refused and nothing was sent`;
}

class OutboundRefused extends Error {
  readonly code = 'ERR_OUTBOUND_REFUSED';
}

class AnswerTooLarge extends Error {
  readonly code = 'ERR_ANSWER_TOO_LARGE';
}

/**
 * The body, up to MAX_ANSWER_BYTES: an answer that says it is larger is not read at all, and one
 * that turns out larger is dropped (with its connection) at the chunk that passes the cap.
 */
async function readCapped(
  response: Dispatcher.ResponseData,
  tooLarge: () => AnswerTooLarge,
): Promise<Buffer> {
  const { body } = response;
  if (Number(response.headers['content-length']) > MAX_ANSWER_BYTES) {
    body.destroy();
    throw tooLarge();
  }
  const chunks: Buffer[] = [];
  let size = 0;
  // Throwing out of the loop destroys the body.
  for await (const chunk of body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_ANSWER_BYTES) throw tooLarge();
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size);
}

export interface FetchInit {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  signal?: AbortSignal;
}

/**
 * The only way a check's ccxt instance reaches the network (its `fetchImplementation`). It
 * refuses any URL outside the definition's origin before anything is sent, and every address it
 * would connect to that the policy refuses, at connect time, on the very address the socket
 * connects to: a name is resolved once, by our lookup, and the socket uses that answer, so a
 * rebinding name can't pass the check with one address and connect to another.
 */
/** The part of a fetch Response ccxt reads (handleRestResponse). */
export interface GuardedResponse {
  status: number;
  statusText: string;
  headers: Record<string, string | string[] | undefined>;
  text(): Promise<string>;
  arrayBuffer(): Promise<ArrayBuffer>;
}

export interface OutboundGuard {
  fetch: (url: string, init: FetchInit) => Promise<GuardedResponse>;
  /**
   * Why a request was refused, once one was: the check fails with it, whatever ccxt made of the
   * error.
   */
  readonly refusal: string | undefined;
  /**
   * An answer was larger than MAX_ANSWER_BYTES: the check fails with ANSWER_TOO_LARGE, whatever
   * ccxt made of the error.
   */
  readonly tooLarge: boolean;
  /** The HTTP status of every answer, in order. */
  readonly statuses: readonly number[];
  close(): Promise<void>;
}

export function createOutboundGuard(origin: string, policy: OutboundPolicy): OutboundGuard {
  const { Agent, buildConnector, request } = loadUndici();
  const resolve = policy.resolve ?? systemResolver;
  const statuses: number[] = [];
  let refusal: string | undefined;
  const refuse = (message: string): OutboundRefused => {
    refusal ??= message;
    return new OutboundRefused(message);
  };
  let tooLarge = false;
  const stopReading = (): AnswerTooLarge => {
    tooLarge = true;
    return new AnswerTooLarge(ANSWER_TOO_LARGE);
  };

  const lookup: LookupFunction = (hostname, options, callback) => {
    resolve(hostname).then(
      (found) => {
        const wanted = found.filter((entry) => !options.family || entry.family === options.family);
        if (wanted.length === 0) {
          callback(
            Object.assign(new Error(`no address found for the exchange's host`), {
              code: 'ENOTFOUND',
            }),
            '',
            0,
          );
          return;
        }
        // One refused address refuses the name: which one the socket would pick is not ours to
        // know.
        for (const entry of wanted) {
          const why = addressRefusal(entry.address, policy);
          if (why !== null) {
            callback(refuse(why), '', 0);
            return;
          }
        }
        if (options.all) callback(null, wanted);
        else callback(null, wanted[0].address, wanted[0].family);
      },
      (error: NodeJS.ErrnoException) => callback(error, '', 0),
    );
  };

  const connectTo = buildConnector({ lookup });
  const connect: BuildConnector.connector = (options, callback) => {
    const host = options.hostname.replace(/^\[(.*)\]$/, '$1');
    // The lookup is not called for an IP literal.
    const literal = isIP(host) === 0 ? null : addressRefusal(host, policy);
    if (literal !== null) {
      callback(refuse(literal), null);
      return;
    }
    connectTo(options, (...result) => {
      const [error, socket] = result;
      if (error !== null) {
        callback(error, null);
        return;
      }
      // Whatever resolved it, this is where the socket went; nothing has been written to it yet.
      // A socket without a remote address (already closed) is refused like a non-address.
      const why = addressRefusal(socket.remoteAddress ?? '', policy);
      if (why !== null) {
        socket.destroy();
        callback(refuse(why), null);
        return;
      }
      callback(null, socket);
    });
  };
  const agent = new Agent({ connect, connections: 4, keepAliveTimeout: 1_000 });

  return {
    // undici's request rather than its fetch: no WHATWG streams, half the work per request (ccxt
    // does the same when it owns the transport); it follows no redirect, and we refuse them.
    async fetch(url, init) {
      if (new URL(url).origin !== origin) throw refuse(ORIGIN_REFUSED);
      const response = await request(url, {
        method: (init.method ?? 'GET') as 'GET',
        headers: init.headers,
        body: init.body,
        signal: init.signal,
        dispatcher: agent,
      });
      statuses.push(response.statusCode);
      if (
        response.statusCode >= 300 &&
        response.statusCode < 400 &&
        response.headers.location !== undefined
      ) {
        await response.body.dump();
        throw refuse(REDIRECT_REFUSED);
      }
      return {
        status: response.statusCode,
        statusText: STATUS_CODES[response.statusCode] ?? '',
        headers: response.headers,
        // As undici's text(): UTF-8, a byte order mark dropped.
        text: async () => new TextDecoder().decode(await readCapped(response, stopReading)),
        arrayBuffer: async () => new Uint8Array(await readCapped(response, stopReading)).buffer,
      };
    },
    get refusal() {
      return refusal;
    },
    get tooLarge() {
      return tooLarge;
    },
    statuses,
    close: () => agent.destroy(),
  };
}
