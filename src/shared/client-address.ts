import { BlockList, isIP } from 'node:net';

/**
 * Which peers are proxies we run, whose X-Forwarded-For entries are believed: the last `hops` hops
 * (0: none, the header is ignored), or the peers whose address is in one of `proxies` (CIDRs,
 * "10.0.0.0/8", a single address as "/32" or "/128").
 */
export type TrustProxy = { hops: number } | { proxies: string[] };

/** The client address when none can be told: never an IP, so never loopback, never trusted. */
const UNKNOWN_ADDRESS = 'unknown';

/**
 * An IP address in one spelling, or null when the text is none: IPv6 lower-case and compressed, an
 * IPv4-mapped IPv6 address (::ffff:1.2.3.4) as the IPv4 address it is, so one client has one
 * rate-limit key and loopback looks like loopback.
 */
export function canonicalIp(text: string): string | null {
  const family = isIP(text);
  if (family === 4) return text;
  if (family !== 6) return null;
  // A zone id (fe80::1%eth0) is no part of the WHATWG syntax below; only link-local peers have one.
  if (text.includes('%')) return text.toLowerCase();
  const compressed = new URL(`http://[${text}]`).hostname.slice(1, -1);
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(compressed);
  if (!mapped) return compressed;
  const [high, low] = [parseInt(mapped[1], 16), parseInt(mapped[2], 16)];
  return [high >> 8, high & 255, low >> 8, low & 255].join('.');
}

/**
 * An X-Forwarded-For entry's address. Some proxies (Azure's application gateway) write the port
 * too: "1.2.3.4:5678", "[2001:db8::1]:5678".
 */
function forwardedIp(entry: string): string | null {
  const withPort = /^\[([^\]]+)\](?::\d{1,5})?$/.exec(entry) ?? /^([\d.]+):\d{1,5}$/.exec(entry);
  return canonicalIp(withPort ? withPort[1] : entry);
}

const proxyLists = new WeakMap<readonly string[], BlockList>();

function blockListOf(proxies: readonly string[]): BlockList {
  let list = proxyLists.get(proxies);
  if (!list) {
    list = new BlockList();
    for (const cidr of proxies) {
      const [address, prefix] = cidr.split('/');
      list.addSubnet(address, Number(prefix), isIP(address) === 4 ? 'ipv4' : 'ipv6');
    }
    proxyLists.set(proxies, list);
  }
  return list;
}

/**
 * The client's address, which the client can never choose. The chain is X-Forwarded-For's entries
 * (each proxy appends the address it was called from) followed by the socket's peer; only the
 * right-hand end, written by our own proxies, is believed:
 * - `hops: N`: the peer and the N - 1 entries left of it are our proxies; the client is the entry
 *   left of them (N places left of the peer), or the leftmost when the chain is shorter (a request
 *   that came past fewer proxies). 0 hops: the peer.
 * - `proxies`: from the peer leftwards, every address in the list is one of our proxies; the first
 *   that is not is the client (the leftmost, when every one is).
 * An entry read as the client that is no IP address is UNKNOWN_ADDRESS, not its right-hand
 * neighbour: that is our proxy's own address, which on loopback would open /metrics to whoever got
 * a malformed entry there, and it is not the client's either.
 */
export function clientAddressFrom(
  peer: string | undefined,
  forwardedFor: string | string[] | undefined,
  trust: TrustProxy,
): string {
  const socket = (peer === undefined ? null : canonicalIp(peer)) ?? UNKNOWN_ADDRESS;
  if ('hops' in trust && trust.hops === 0) return socket;
  const header = Array.isArray(forwardedFor) ? forwardedFor.join(',') : (forwardedFor ?? '');
  // Empty entries can only come from the client's part of the header: our proxies write addresses.
  const chain = [
    ...header
      .split(',')
      .map((entry) => entry.trim())
      .filter((entry) => entry !== ''),
    socket,
  ];
  let at: number;
  if ('hops' in trust) at = Math.max(0, chain.length - 1 - trust.hops);
  else {
    const proxies = blockListOf(trust.proxies);
    const trusted = (entry: string) => {
      const ip = forwardedIp(entry);
      return ip !== null && proxies.check(ip, isIP(ip) === 4 ? 'ipv4' : 'ipv6');
    };
    at = chain.length - 1;
    while (at > 0 && trusted(chain[at])) at--;
  }
  return forwardedIp(chain[at]) ?? UNKNOWN_ADDRESS;
}
