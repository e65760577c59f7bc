// The SSRF address classifier, on every range it must refuse. No network traffic at all.
import { describe, expect, it } from 'vitest';
import {
  forbiddenHostName,
  isAllowedAddress,
  isForbiddenAddress,
  parseAllowlist,
} from '../src/net/private-network.js';
import { loadConfig } from '../src/config.js';

const blockedCases: Array<[string, string]> = [
  // IPv4
  ['127.0.0.1', 'loopback'],
  ['127.255.255.254', 'loopback'],
  ['10.0.0.1', 'private'],
  ['10.255.255.255', 'private'],
  ['172.16.0.1', 'private'],
  ['172.31.255.254', 'private'],
  ['192.168.1.1', 'private'],
  ['100.64.0.1', 'cgnat'],
  ['100.127.255.254', 'cgnat'],
  ['169.254.169.254', 'link-local'],
  ['169.254.0.1', 'link-local'],
  ['0.0.0.0', 'unspecified'],
  ['0.1.2.3', 'unspecified'],
  ['224.0.0.1', 'multicast'],
  ['239.255.255.250', 'multicast'],
  ['255.255.255.255', 'broadcast'],
  ['240.0.0.1', 'reserved'],
  ['192.0.0.8', 'reserved'],
  ['192.88.99.1', 'reserved'],
  ['192.0.2.1', 'documentation'],
  ['198.51.100.7', 'documentation'],
  ['203.0.113.200', 'documentation'],
  ['198.18.0.1', 'benchmarking'],
  ['198.19.255.255', 'benchmarking'],
  // IPv6
  ['::1', 'loopback'],
  ['::', 'unspecified'],
  ['fe80::1', 'link-local'],
  ['febf::1', 'link-local'],
  ['fec0::1', 'site-local'],
  ['fc00::1', 'unique-local'],
  ['fd12:3456:789a::1', 'unique-local'],
  ['ff02::1', 'multicast'],
  ['ff0e::1', 'multicast'],
  ['2001:db8::1', 'documentation'],
  ['3fff::1', 'documentation'],
  ['2001:2::1', 'benchmarking'],
  ['2001::1', 'teredo'],
  ['2001:0:4136:e378:8000:63bf:3fff:fdd2', 'teredo'],
  ['2001:10::1', 'reserved'], // ORCHID, in 2001::/23
  ['100::1', 'reserved'], // discard-only
  ['64:ff9b:1::a00:1', 'reserved'], // local-use NAT64
  ['::7f00:1', 'reserved'], // IPv4-compatible (deprecated)
  ['5f00::1', 'reserved'], // outside 2000::/3
  ['4000::1', 'reserved'],
  ['e000::1', 'reserved'],
];

describe('isForbiddenAddress: blocked ranges', () => {
  it.each(blockedCases)('%s is blocked as %s', (ip, category) => {
    const v = isForbiddenAddress(ip, []);
    expect(v.blocked).toBe(true);
    expect(v.category).toBe(category);
    expect(v.reason).toMatch(/^blocked: /);
    expect(v.reason).toContain(ip);
  });

  it('gives a readable reason', () => {
    expect(isForbiddenAddress('127.0.0.1').reason).toBe('blocked: 127.0.0.1 is a loopback address');
    expect(isForbiddenAddress('10.1.2.3').reason).toBe('blocked: 10.1.2.3 is a private address');
    expect(isForbiddenAddress('fd00::1').reason).toBe('blocked: fd00::1 is a unique-local (private) address');
  });

  it('range edges: just outside the private ranges is public', () => {
    for (const ip of ['172.15.255.255', '172.32.0.0', '100.63.255.255', '100.128.0.0', '11.0.0.0', '9.255.255.255', '192.167.255.255', '192.169.0.0', '198.17.255.255', '198.20.0.0', '169.253.255.255', '223.255.255.255']) {
      expect(isForbiddenAddress(ip).blocked, ip).toBe(false);
    }
  });
});

describe('isForbiddenAddress: IPv4 embedded in IPv6', () => {
  it.each([
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['0:0:0:0:0:ffff:7f00:0001', 'loopback'],
    ['::ffff:10.0.0.1', 'private'],
    ['::ffff:169.254.169.254', 'link-local'],
    ['::ffff:0.0.0.0', 'unspecified'],
    ['::ffff:192.168.0.1', 'private'],
    // NAT64 well-known prefix and 6to4 embed an IPv4 that is judged on its own
    ['64:ff9b::7f00:1', 'loopback'],
    ['64:ff9b::10.1.1.1', 'private'],
    ['2002:7f00:1::1', 'loopback'],
    ['2002:a9fe:a9fe::1', 'link-local'],
    ['2002:c0a8:0101::', 'private'],
  ])('%s is blocked (%s)', (ip, category) => {
    const v = isForbiddenAddress(ip);
    expect(v.blocked).toBe(true);
    expect(v.category).toBe(category);
    expect(v.reason).toMatch(/^blocked: /);
  });

  it('mapped, NAT64 and 6to4 forms of a public IPv4 pass', () => {
    expect(isForbiddenAddress('::ffff:8.8.8.8').blocked).toBe(false);
    expect(isForbiddenAddress('64:ff9b::808:808').blocked).toBe(false);
    expect(isForbiddenAddress('2002:808:808::1').blocked).toBe(false);
  });
});

describe('isForbiddenAddress: public addresses pass', () => {
  it.each(['8.8.8.8', '1.1.1.1', '93.184.216.34', '151.101.1.69', '2606:4700::1111', '2001:4860:4860::8888', '2a00:1450:4001:80b::200e'])(
    '%s is allowed',
    (ip) => {
      const v = isForbiddenAddress(ip, []);
      expect(v).toEqual({ blocked: false, category: 'global' });
      expect(isAllowedAddress(ip)).toBe(true);
    },
  );
});

describe('isForbiddenAddress: odd inputs', () => {
  it('tolerates brackets and zone ids, still blocks', () => {
    expect(isForbiddenAddress('[::1]').blocked).toBe(true);
    expect(isForbiddenAddress('fe80::1%eth0').category).toBe('link-local');
  });

  it('blocks strings that are not IP addresses', () => {
    for (const s of ['', 'example.com', '999.1.1.1', '1.2.3.4.5', ':::1', 'localhost']) {
      const v = isForbiddenAddress(s);
      expect(v.blocked, s).toBe(true);
      expect(v.reason).toMatch(/^blocked: /);
    }
  });

  it('judges non-canonical IPv4 spellings by value', () => {
    // The fetch path normalises with WHATWG URL first; the classifier is still safe on raw input.
    expect(isForbiddenAddress('2130706433').blocked).toBe(true);
    expect(isForbiddenAddress('0x7f.1').blocked).toBe(true);
    expect(isForbiddenAddress('0177.0.0.1').blocked).toBe(true);
  });

  it('refuses localhost names without DNS', () => {
    expect(forbiddenHostName('localhost')).toMatch(/^blocked: /);
    expect(forbiddenHostName('LOCALHOST.')).toMatch(/^blocked: /);
    expect(forbiddenHostName('api.localhost')).toMatch(/^blocked: /);
    expect(forbiddenHostName('localhost.example.com')).toBeUndefined();
    expect(forbiddenHostName('example.com')).toBeUndefined();
  });
});

describe('allowlist (FETCH_ALLOWLIST) is the only exemption', () => {
  it('exempts exactly the listed CIDRs', () => {
    const allow = parseAllowlist(['127.0.0.9/32', '10.20.0.0/16', 'fd00:1::/32']);
    expect(isForbiddenAddress('127.0.0.9', allow)).toEqual({ blocked: false, category: 'allowlisted' });
    expect(isForbiddenAddress('127.0.0.1', allow).blocked).toBe(true);
    expect(isForbiddenAddress('10.20.3.4', allow).blocked).toBe(false);
    expect(isForbiddenAddress('10.21.0.1', allow).blocked).toBe(true);
    expect(isForbiddenAddress('fd00:1::5', allow).blocked).toBe(false);
    expect(isForbiddenAddress('fd00:2::5', allow).blocked).toBe(true);
  });

  it('an IPv4 entry also covers the IPv4-mapped IPv6 form (dual-stack sockets)', () => {
    const allow = parseAllowlist(['127.0.0.9/32']);
    expect(isForbiddenAddress('::ffff:127.0.0.9', allow).blocked).toBe(false);
    expect(isForbiddenAddress('::ffff:127.0.0.1', allow).blocked).toBe(true);
  });

  it('accepts raw CIDR strings too', () => {
    expect(isForbiddenAddress('192.168.5.5', ['192.168.0.0/16']).blocked).toBe(false);
    expect(isForbiddenAddress('::1', ['::1/128']).blocked).toBe(false);
  });

  it('an IPv4 entry does not exempt IPv6 and vice versa', () => {
    expect(isForbiddenAddress('::1', ['127.0.0.0/8']).blocked).toBe(true);
    expect(isForbiddenAddress('127.0.0.1', ['::1/128']).blocked).toBe(true);
  });

  it('reads a bare address as that one address (/32 or /128)', () => {
    const allow = parseAllowlist(['127.0.0.1', '::1']);
    expect(isForbiddenAddress('127.0.0.1', allow).blocked).toBe(false);
    expect(isForbiddenAddress('127.0.0.2', allow).blocked).toBe(true);
    expect(isForbiddenAddress('::1', allow).blocked).toBe(false);
    expect(isForbiddenAddress('::2', allow).blocked).toBe(true);
    expect(loadConfig({ FETCH_ALLOWLIST: '127.0.0.1, ::1' }).FETCH_ALLOWLIST).toEqual(['127.0.0.1', '::1']);
    expect(() => loadConfig({ FETCH_ALLOWLIST: 'example.com' })).toThrow(/FETCH_ALLOWLIST.*address or a CIDR/);
    expect(() => loadConfig({ FETCH_ALLOWLIST: '300.1.1.1' })).toThrow(/invalid allowlist entry "300\.1\.1\.1"/);
  });

  it('rejects malformed entries with a clear message', () => {
    expect(() => parseAllowlist(['10.0.0.0/33'])).toThrow(/invalid allowlist entry "10\.0\.0\.0\/33"/);
    expect(() => parseAllowlist(['not-a-cidr'])).toThrow(/invalid allowlist entry/);
    expect(parseAllowlist([]).entries).toHaveLength(0);
  });
});
