import WebSocket from 'ws';
import { clientAddressFrom, type TrustProxy } from '../src/shared/client-address';
import { startTestApp, type TestApp } from './helpers/app';
import { until } from './helpers/live';

const ONE_HOP: TrustProxy = { hops: 1 };
const LISTED: TrustProxy = { proxies: ['10.0.0.0/8', '127.0.0.1/32', '2001:db8::/32'] };

describe('the client address behind proxies', () => {
  it('with hops, takes the entry the outermost proxy wrote, never one the client wrote before it', () => {
    expect(clientAddressFrom('127.0.0.1', undefined, ONE_HOP)).toBe('127.0.0.1');
    expect(clientAddressFrom('127.0.0.1', '198.51.100.1', ONE_HOP)).toBe('198.51.100.1');
    expect(clientAddressFrom('127.0.0.1', '127.0.0.1, 203.0.113.9', ONE_HOP)).toBe('203.0.113.9');
    expect(clientAddressFrom('10.0.0.3', '127.0.0.1, 198.51.100.1, 10.0.0.2', { hops: 2 })).toBe(
      '198.51.100.1',
    );
    // Two headers arrive joined; a client's empty entries shift nothing on the proxies' side.
    expect(clientAddressFrom('127.0.0.1', ['127.0.0.1', '198.51.100.2'], ONE_HOP)).toBe(
      '198.51.100.2',
    );
    expect(clientAddressFrom('127.0.0.1', '127.0.0.1,, ,198.51.100.3', ONE_HOP)).toBe(
      '198.51.100.3',
    );
  });

  it('with hops, takes the leftmost of a shorter chain, and the peer with 0 hops', () => {
    expect(clientAddressFrom('10.0.0.3', '198.51.100.1', { hops: 2 })).toBe('198.51.100.1');
    expect(clientAddressFrom('10.0.0.3', undefined, { hops: 3 })).toBe('10.0.0.3');
    expect(clientAddressFrom('203.0.113.5', '127.0.0.1', { hops: 0 })).toBe('203.0.113.5');
  });

  it('with a list, walks left from the peer past the listed proxies', () => {
    // A caller that is no proxy of ours is the client, whatever it wrote.
    expect(clientAddressFrom('203.0.113.5', '127.0.0.1', LISTED)).toBe('203.0.113.5');
    expect(clientAddressFrom('127.0.0.1', '127.0.0.1, 198.51.100.1, 10.1.1.1', LISTED)).toBe(
      '198.51.100.1',
    );
    expect(clientAddressFrom('2001:db8::1', '198.51.100.1, 2001:DB8:0:0::2', LISTED)).toBe(
      '198.51.100.1',
    );
    // Every hop a proxy of ours: the leftmost.
    expect(clientAddressFrom('127.0.0.1', '10.0.0.9, 10.0.0.8', LISTED)).toBe('10.0.0.9');
    expect(clientAddressFrom('::ffff:10.2.3.4', '198.51.100.4', LISTED)).toBe('198.51.100.4');
  });

  it('names an address one way: IPv4-mapped IPv6 as IPv4, IPv6 compressed in lower case, without a port', () => {
    expect(clientAddressFrom('::ffff:127.0.0.1', undefined, { hops: 0 })).toBe('127.0.0.1');
    expect(clientAddressFrom('::FFFF:7f00:1', undefined, { hops: 0 })).toBe('127.0.0.1');
    expect(clientAddressFrom('127.0.0.1', '::ffff:198.51.100.7', ONE_HOP)).toBe('198.51.100.7');
    expect(clientAddressFrom('127.0.0.1', '2001:DB8:0:0::7', ONE_HOP)).toBe('2001:db8::7');
    expect(clientAddressFrom('127.0.0.1', '198.51.100.7:5000', ONE_HOP)).toBe('198.51.100.7');
    expect(clientAddressFrom('127.0.0.1', '[2001:db8::7]:443', ONE_HOP)).toBe('2001:db8::7');
  });

  it('calls a client whose entry is no address unknown, never the proxy beside it', () => {
    expect(clientAddressFrom('127.0.0.1', '198.51.100.1, not-an-address', ONE_HOP)).toBe('unknown');
    expect(clientAddressFrom('127.0.0.1', '127.0.0.1, 300.1.1.1', ONE_HOP)).toBe('unknown');
    expect(clientAddressFrom('127.0.0.1', '198.51.100.1, unix:', LISTED)).toBe('unknown');
    expect(clientAddressFrom(undefined, '198.51.100.1', LISTED)).toBe('unknown');
  });
});

interface Line {
  security?: string;
  transport?: string;
  clientAddress?: string;
}

/** Opens a WebSocket with a token that is refused, and returns the security line it left. */
async function refusedOverWebSocket(t: TestApp, forwardedFor: string): Promise<Line> {
  const from = t.logs.length;
  const socket = new WebSocket(`${t.url.replace(/^http/, 'ws')}/graphql`, 'graphql-transport-ws', {
    headers: { 'x-forwarded-for': forwardedFor },
  });
  const closed = new Promise<number>((resolve) => socket.on('close', (code) => resolve(code)));
  socket.on('open', () =>
    socket.send(
      JSON.stringify({ type: 'connection_init', payload: { authorization: 'Bearer not.a.token' } }),
    ),
  );
  expect(await closed).toBe(4403);
  const refused = () =>
    t.logs
      .slice(from)
      .map((l) => JSON.parse(l) as Line)
      .find((l) => l.security === 'token refused' && l.transport === 'websocket');
  await until('the refusal logged', () => refused() !== undefined);
  return refused()!;
}

async function scrape(t: TestApp, forwardedFor?: string): Promise<number> {
  const response = await fetch(`${t.url}/metrics`, {
    headers: forwardedFor === undefined ? {} : { 'x-forwarded-for': forwardedFor },
  });
  await response.text();
  return response.status;
}

describe('TRUST_PROXY=1 over WebSocket', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ TRUST_PROXY: '1' });
  });
  afterAll(() => t.close());

  it('logs a refused token with the address the proxy saw, not the first entry', async () => {
    expect(await refusedOverWebSocket(t, '127.0.0.1, 198.51.100.88')).toMatchObject({
      clientAddress: '198.51.100.88',
    });
  });
});

describe('TRUST_PROXY as a list of proxies', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ TRUST_PROXY: '127.0.0.0/8' });
  });
  afterAll(() => t.close());

  it('keeps /metrics shut to a client behind the proxy that forges loopback entries', async () => {
    expect(await scrape(t, '127.0.0.1, 203.0.113.9')).toBe(401);
    expect(await scrape(t, '127.0.0.1, 203.0.113.9, 127.0.0.2')).toBe(401);
    // The scraper beside the service, or behind loopback proxies only, is still let in.
    expect(await scrape(t)).toBe(200);
    expect(await scrape(t, '127.0.0.3')).toBe(200);
  });

  it('logs a refused WebSocket token with the first address that is no proxy of ours', async () => {
    expect(await refusedOverWebSocket(t, '127.0.0.1, 198.51.100.89, 127.0.0.5')).toMatchObject({
      clientAddress: '198.51.100.89',
    });
  });
});
