// The SSRF guard's decisions before a connection: the URL must be absolute http(s), and its host
// must be (or resolve only to) addresses the private-network policy allows.
//
//   1. WHATWG URL normalises odd IPv4 spellings (2130706433, 0x7f.1, 127.1 -> 127.0.0.1) before
//      we look at the host;
//   2. IP-literal hosts are judged directly; "localhost" / "*.localhost" are refused by name;
//   3. DNS names are resolved here, and refused when ANY returned address is forbidden, so the
//      transport can only ever connect to checked addresses (it checks the connected one again).
import { lookup as dnsLookup } from 'node:dns';
import net from 'node:net';
import { FetchError, mapNodeError } from './errors.js';
import { forbiddenHostName, isForbiddenAddress, toAllowlist, type Allowlist, type AllowlistInput } from './private-network.js';

export interface ResolvedAddress {
  address: string;
  family: number;
}

/** Resolves a host name to addresses (injectable for tests; default: dns.lookup with all:true). */
export type Resolver = (hostname: string) => Promise<ReadonlyArray<ResolvedAddress>>;

export const defaultResolve: Resolver = (hostname) =>
  new Promise((resolve, reject) => {
    dnsLookup(hostname, { all: true, verbatim: true }, (err, addresses) => {
      if (err) reject(err);
      else resolve(addresses);
    });
  });

export function parseHttpUrl(url: string): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new FetchError('invalid URL', 'invalid-url', false);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new FetchError(`unsupported URL scheme ${u.protocol} (only http and https)`, 'invalid-url', false);
  }
  if (!u.hostname) throw new FetchError('invalid URL: no host', 'invalid-url', false);
  u.hash = '';
  return u;
}

/** A URL's hostname without the brackets of an IPv6 literal. */
export const bareHost = (hostname: string) =>
  hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;

export const blockedError = (reason: string | undefined) =>
  new FetchError(reason ?? 'blocked: forbidden address', 'blocked', false);

/**
 * The addresses `host` (a bare hostname or IP literal) may be contacted at, every one checked, in
 * the resolver's order. Rejects with a FetchError: 'blocked', or 'network' when DNS fails.
 */
export async function resolveAllowed(host: string, allow: Allowlist, resolve: Resolver = defaultResolve): Promise<ResolvedAddress[]> {
  const family = net.isIP(host);
  if (family !== 0) {
    const v = isForbiddenAddress(host, allow);
    if (v.blocked) throw blockedError(v.reason);
    return [{ address: host, family }];
  }
  const byName = forbiddenHostName(host);
  if (byName) throw blockedError(byName);
  let addrs: ReadonlyArray<ResolvedAddress>;
  try {
    addrs = await resolve(host);
  } catch (e) {
    throw mapNodeError(e, host);
  }
  if (addrs.length === 0) throw new FetchError(`host not found: ${host}`, 'network', false);
  for (const a of addrs) {
    const v = isForbiddenAddress(a.address, allow);
    if (v.blocked) {
      throw blockedError(`blocked: ${host} resolves to ${a.address}, ${v.noun ? `a${/^[aeio]/i.test(v.noun) ? 'n' : ''} ${v.noun}` : 'a forbidden address'}`);
    }
  }
  return addrs.map((a) => ({ address: a.address, family: a.family }));
}

/** Why the address a socket actually connected to is refused, or undefined when it is allowed. */
export function refuseConnected(remote: string | undefined, allow: Allowlist): FetchError | undefined {
  const v = remote ? isForbiddenAddress(remote, allow) : { blocked: true, reason: undefined };
  return v.blocked ? blockedError(v.reason ?? 'blocked: could not verify the connected address') : undefined;
}

/**
 * Checks a URL without sending anything: absolute http(s), host not forbidden, and (for names)
 * every address DNS returns allowed. For validating webhook URLs at configure time.
 * Rejects with a FetchError (kind 'invalid-url' or 'blocked', or 'network' if DNS fails).
 */
export async function preflightUrl(
  url: string,
  opts: { allowlist?: AllowlistInput; resolve?: Resolver } = {},
): Promise<void> {
  const target = parseHttpUrl(url);
  await resolveAllowed(bareHost(target.hostname), toAllowlist(opts.allowlist), opts.resolve);
}
