// The SSRF address classifier: decides whether an outbound connection to an IP address is allowed.
//
// Policy: only global unicast addresses pass. Everything else (loopback, private, CGNAT,
// link-local, unspecified, multicast, broadcast, documentation, benchmarking, reserved,
// unique-local, site-local, IPv4 embedded in IPv6 that points at any of those, ...) is refused.
// The operator's FETCH_ALLOWLIST (a list of CIDRs) is the only exemption.
//
// Pure code (no I/O): the address guard (address-guard.ts) calls it on literal hosts and on every
// address DNS returns, and the transport on the socket's remote address after connect.
import ipaddr from 'ipaddr.js';

type IPv4 = ipaddr.IPv4;
type IPv6 = ipaddr.IPv6;
type Addr = IPv4 | IPv6;

/** Result of classifying one address. `reason` is set when blocked and always contains "blocked". */
export interface AddressVerdict {
  blocked: boolean;
  /**
   * e.g. "blocked: 127.0.0.1 is a loopback address". It names the address: for the server log
   * only, never for an answer (see address-guard.ts).
   */
  reason?: string;
  /** short machine-friendly category, e.g. "loopback", "private", "allowlisted", "global" */
  category: string;
  /** when blocked: what the address is, without article, e.g. "loopback address" */
  noun?: string;
}

/** A parsed FETCH_ALLOWLIST: build once with parseAllowlist(), reuse for every check. */
export interface Allowlist {
  readonly kind: 'allowlist';
  readonly entries: ReadonlyArray<readonly [Addr, number]>;
  /** the CIDRs as given, for logs */
  readonly source: readonly string[];
}

export type AllowlistInput = Allowlist | readonly string[] | undefined;

/**
 * Parses CIDRs like "10.0.0.0/8" or "fd00::/8"; a bare address ("127.0.0.1", "::1") means that one
 * address (/32, /128). Throws an Error naming the bad entry.
 */
export function parseAllowlist(cidrs: readonly string[]): Allowlist {
  const entries: Array<readonly [Addr, number]> = [];
  for (const raw of cidrs) {
    const s = raw.trim();
    if (!s) continue;
    let parsed: [Addr, number];
    try {
      if (s.includes('/')) parsed = ipaddr.parseCIDR(s);
      else {
        const addr = ipaddr.parse(s);
        parsed = [addr, addr.kind() === 'ipv4' ? 32 : 128];
      }
    } catch {
      throw new Error(`invalid allowlist entry "${raw}": expected an address or a CIDR, like 127.0.0.1, 10.0.0.0/8 or fd00::/8`);
    }
    entries.push([parsed[0], parsed[1]] as const);
  }
  return { kind: 'allowlist', entries, source: [...cidrs] };
}

const EMPTY: Allowlist = { kind: 'allowlist', entries: [], source: [] };

/** Accepts a parsed allowlist or raw CIDR strings (parsed on the fly; prefer parsing once). */
export function toAllowlist(input: AllowlistInput): Allowlist {
  if (!input) return EMPTY;
  if (isAllowlist(input)) return input;
  return parseAllowlist(input);
}

function isAllowlist(x: Allowlist | readonly string[]): x is Allowlist {
  return !Array.isArray(x) && (x as Allowlist).kind === 'allowlist';
}

// ---- ranges -------------------------------------------------------------------------------

type Range<T extends Addr> = readonly [T, number, string /* category */, string /* description */];

const v4 = (cidr: string, category: string, description: string): Range<IPv4> => {
  const [a, n] = ipaddr.IPv4.parseCIDR(cidr);
  return [a, n, category, description];
};
const v6 = (cidr: string, category: string, description: string): Range<IPv6> => {
  const [a, n] = ipaddr.IPv6.parseCIDR(cidr);
  return [a, n, category, description];
};

// IANA IPv4 special-purpose registry (RFC 6890 and successors), most specific first.
const V4_RANGES: ReadonlyArray<Range<IPv4>> = [
  v4('255.255.255.255/32', 'broadcast', 'broadcast address'),
  v4('0.0.0.0/8', 'unspecified', 'unspecified ("this network") address'),
  v4('127.0.0.0/8', 'loopback', 'loopback address'),
  v4('10.0.0.0/8', 'private', 'private address'),
  v4('172.16.0.0/12', 'private', 'private address'),
  v4('192.168.0.0/16', 'private', 'private address'),
  v4('100.64.0.0/10', 'cgnat', 'carrier-grade NAT (shared) address'),
  v4('169.254.0.0/16', 'link-local', 'link-local address'),
  v4('192.0.0.0/24', 'reserved', 'IETF protocol-assignment (reserved) address'),
  v4('192.0.2.0/24', 'documentation', 'documentation address'),
  v4('198.51.100.0/24', 'documentation', 'documentation address'),
  v4('203.0.113.0/24', 'documentation', 'documentation address'),
  v4('198.18.0.0/15', 'benchmarking', 'benchmarking address'),
  v4('192.88.99.0/24', 'reserved', 'reserved (deprecated 6to4 relay) address'),
  v4('224.0.0.0/4', 'multicast', 'multicast address'),
  v4('240.0.0.0/4', 'reserved', 'reserved address'),
];

// IPv6: specific ranges first; anything outside 2000::/3 (global unicast) is reserved.
const V6_RANGES: ReadonlyArray<Range<IPv6>> = [
  v6('::/128', 'unspecified', 'unspecified address'),
  v6('::1/128', 'loopback', 'loopback address'),
  v6('fe80::/10', 'link-local', 'link-local address'),
  v6('fec0::/10', 'site-local', 'site-local address'),
  v6('fc00::/7', 'unique-local', 'unique-local (private) address'),
  v6('ff00::/8', 'multicast', 'multicast address'),
  v6('::/96', 'reserved', 'IPv4-compatible (deprecated) address'),
  v6('::ffff:0:0:0/96', 'reserved', 'IPv4-translated address'),
  v6('64:ff9b:1::/48', 'reserved', 'local-use NAT64 address'),
  v6('100::/64', 'reserved', 'discard-only address'),
  v6('2001::/32', 'teredo', 'Teredo tunnel address'),
  v6('2001:2::/48', 'benchmarking', 'benchmarking address'),
  v6('2001:db8::/32', 'documentation', 'documentation address'),
  v6('3fff::/20', 'documentation', 'documentation address'),
  v6('2001::/23', 'reserved', 'IETF protocol-assignment (reserved) address'),
];
const V6_GLOBAL_UNICAST = ipaddr.IPv6.parseCIDR('2000::/3');
const V6_MAPPED = ipaddr.IPv6.parseCIDR('::ffff:0:0/96');
const V6_NAT64 = ipaddr.IPv6.parseCIDR('64:ff9b::/96');
const V6_6TO4 = ipaddr.IPv6.parseCIDR('2002::/16');

function v4FromParts(hi: number, lo: number): IPv4 {
  return new ipaddr.IPv4([hi >> 8, hi & 0xff, lo >> 8, lo & 0xff]);
}

function allowlisted(addr: Addr, allow: Allowlist): boolean {
  for (const [net, bits] of allow.entries) {
    if (net.kind() === addr.kind() && addr.match(net, bits)) return true;
  }
  return false;
}

/** Parses an address string leniently (zone ids and brackets are removed). Returns null if invalid. */
export function parseAddress(ip: string): Addr | null {
  let s = ip.trim();
  if (s.startsWith('[') && s.endsWith(']')) s = s.slice(1, -1);
  const pct = s.indexOf('%');
  if (pct !== -1) s = s.slice(0, pct);
  if (!ipaddr.isValid(s)) return null;
  try {
    return ipaddr.parse(s);
  } catch {
    return null;
  }
}

/** One spelling per machine: ::ffff:a.b.c.d is a.b.c.d, IPv6 fully expanded, zone ids dropped. */
export function canonicalAddress(ip: string): string {
  const addr = parseAddress(ip);
  if (!addr) return ip.trim().toLowerCase();
  if (addr.kind() === 'ipv4') return addr.toString();
  const v6 = addr as IPv6;
  return v6.isIPv4MappedAddress() ? v6.toIPv4Address().toString() : v6.toNormalizedString();
}

const article = (noun: string) => (/^(?:[aeio]|u(?!ni))/i.test(noun) ? `an ${noun}` : `a ${noun}`);

function blocked(shown: string, category: string, noun: string): AddressVerdict {
  return { blocked: true, category, reason: `blocked: ${shown} is ${article(noun)}`, noun };
}

function classifyV4(a: IPv4, shown: string): AddressVerdict {
  for (const [net, bits, category, description] of V4_RANGES) {
    if (a.match(net, bits)) return blocked(shown, category, description);
  }
  return { blocked: false, category: 'global' };
}

function classifyV6(a: IPv6, shown: string): AddressVerdict {
  // IPv4 embedded in IPv6: judge the IPv4 the packets would actually reach.
  if (a.match(V6_MAPPED)) {
    const inner = a.toIPv4Address();
    const verdict = classifyV4(inner, shown);
    return verdict.blocked
      ? blocked(shown, verdict.category, `IPv4-mapped ${descriptionOf(verdict)} (${inner.toString()})`)
      : verdict;
  }
  for (const [prefix, innerOf, label] of [
    [V6_NAT64, (p: number[]) => v4FromParts(p[6]!, p[7]!), 'NAT64'],
    [V6_6TO4, (p: number[]) => v4FromParts(p[1]!, p[2]!), '6to4'],
  ] as const) {
    if (a.match(prefix)) {
      const inner = innerOf(a.parts);
      const verdict = classifyV4(inner, shown);
      return verdict.blocked
        ? blocked(shown, verdict.category, `${label} address embedding ${article(descriptionOf(verdict))} (${inner.toString()})`)
        : { blocked: false, category: 'global' };
    }
  }
  for (const [net, bits, category, description] of V6_RANGES) {
    if (a.match(net, bits)) return blocked(shown, category, description);
  }
  if (!a.match(V6_GLOBAL_UNICAST)) return blocked(shown, 'reserved', 'reserved address (not global unicast)');
  return { blocked: false, category: 'global' };
}

function descriptionOf(v: AddressVerdict): string {
  return v.noun ?? `${v.category} address`;
}

/**
 * Classifies an IP address (IPv4 or IPv6 text, brackets and zone ids tolerated).
 * Returns `{ blocked: false }` only for global unicast addresses or addresses inside the
 * allowlist; otherwise `{ blocked: true, reason: "blocked: <ip> is a <kind> address" }`.
 * A string that is not an IP address is blocked ("not an IP address").
 */
export function isForbiddenAddress(ip: string, allowlist?: AllowlistInput): AddressVerdict {
  const addr = parseAddress(ip);
  const shown = ip.trim();
  if (!addr) return { blocked: true, category: 'invalid', reason: `blocked: ${shown} is not an IP address` };
  const allow = toAllowlist(allowlist);
  if (allow.entries.length > 0) {
    if (allowlisted(addr, allow)) return { blocked: false, category: 'allowlisted' };
    // ::ffff:a.b.c.d is the IPv4 a.b.c.d on a dual-stack socket: an IPv4 allowlist entry covers it.
    if (addr.kind() === 'ipv6' && (addr as IPv6).match(V6_MAPPED) && allowlisted((addr as IPv6).toIPv4Address(), allow)) {
      return { blocked: false, category: 'allowlisted' };
    }
  }
  return addr.kind() === 'ipv4' ? classifyV4(addr as IPv4, shown) : classifyV6(addr as IPv6, shown);
}

/** Convenience for callers that only need the boolean. */
export function isAllowedAddress(ip: string, allowlist?: AllowlistInput): boolean {
  return !isForbiddenAddress(ip, allowlist).blocked;
}

/**
 * Host names refused without asking DNS: "localhost" and anything under ".localhost"
 * (RFC 6761 says they always mean loopback). Returns a reason (for logs) or undefined.
 */
export function forbiddenHostName(hostname: string): string | undefined {
  const h = hostname.toLowerCase().replace(/\.$/, '');
  if (h === 'localhost' || h.endsWith('.localhost')) return `blocked: ${hostname} is a loopback host name`;
  return undefined;
}
