import { expect } from '@jest/globals';
import { addressRefusal, classifyAddress } from '../src/exchanges/guard';

/**
 * The outbound address check, asked directly: IPv6 ranges that are not public, and IPv6 forms
 * that stand for an IPv4 address, are judged by what they reach.
 */

const refused = (address: string) => addressRefusal(address, { allowLoopback: false });

describe('the outbound address check', () => {
  it.each([
    ['64:ff9b:1::808:808', 'private', 'NAT64 for local use, even embedding a public IPv4'],
    ['64:ff9b:1:ffff::1', 'private', 'anywhere in the local-use NAT64 /48'],
    ['2002:808:808::1', 'reserved', '6to4, even embedding a public IPv4'],
    ['2002:a00:1::1', 'reserved', '6to4 embedding 10.0.0.1'],
    ['fec0::1', 'private', 'deprecated site-local'],
    ['feff:ffff::1', 'private', 'the end of fec0::/10'],
    ['2001:0:4136:e378::1', 'reserved', 'Teredo'],
    ['::a00:1', 'reserved', 'IPv4-compatible (deprecated)'],
    ['192.88.99.1', 'reserved', "the 6to4 relays' anycast"],
  ])('refuses %s (%s: %s)', (address, kind) => {
    expect(classifyAddress(address)).toBe(kind);
    expect(refused(address)).toMatch(/requests there are refused and nothing was sent/);
  });

  it.each([
    ['::ffff:0:a00:1', 'private', 'IPv4-translated, hex: 10.0.0.1'],
    ['::ffff:0:10.0.0.1', 'private', 'IPv4-translated, dotted'],
    ['0:0:0:0:ffff:0:a9fe:a9fe', 'metadata', 'IPv4-translated 169.254.169.254, uncompressed'],
    ['::ffff:a00:1', 'private', 'IPv4-mapped, hex'],
    ['::FFFF:C0A8:0101', 'private', 'IPv4-mapped 192.168.1.1, upper case'],
    ['::ffff:127.0.0.1', 'loopback', 'IPv4-mapped, dotted'],
    ['::ffff:0:7f00:1', 'loopback', 'IPv4-translated 127.0.0.1'],
    ['64:ff9b::a00:1', 'private', 'well-known NAT64 of 10.0.0.1'],
    ['64:ff9b::10.0.0.1', 'private', 'well-known NAT64, dotted'],
    ['64:ff9b::a9fe:a9fe', 'metadata', 'well-known NAT64 of 169.254.169.254'],
    ['64:ff9b::7f00:1', 'loopback', 'well-known NAT64 of 127.0.0.1'],
  ])('judges %s by the IPv4 address it embeds (%s: %s)', (address, kind) => {
    expect(classifyAddress(address)).toBe(kind);
    expect(refused(address)).not.toBeNull();
  });

  it('lets public addresses through, in any of those forms', () => {
    for (const address of [
      '8.8.8.8',
      '2606:4700::1111',
      '::ffff:808:808',
      '::ffff:0:808:808',
      '64:ff9b::808:808',
      '64:ff9b::8.8.8.8',
    ])
      expect([address, classifyAddress(address)]).toEqual([address, null]);
  });

  it('allows an embedded loopback address only where loopback is allowed', () => {
    expect(addressRefusal('::ffff:0:7f00:1', { allowLoopback: true })).toBeNull();
    expect(addressRefusal('64:ff9b::7f00:1', { allowLoopback: true })).toBeNull();
    expect(addressRefusal('::ffff:0:a00:1', { allowLoopback: true })).toMatch(/private network/);
  });
});
