// The SSRF guard's decisions before a connection: the URL must be absolute http(s), and its host
// must be (or resolve only to) addresses the private-network policy allows.
//
//   1. WHATWG URL normalises odd IPv4 spellings (2130706433, 0x7f.1, 127.1 -> 127.0.0.1) before
//      we look at the host;
//   2. IP-literal hosts are judged directly; "localhost" / "*.localhost" are refused by name;
//   3. DNS names are resolved here, and refused when ANY returned address is forbidden, so the
//      transport can only ever connect to checked addresses (it checks the connected one again).
//
// A refusal says what, never where: its reason ("blocked: resolves to a non-public address (...)") may
// reach the status page, a webhook configuration answer or a delivery log, and must not map the
// internal network. The refused address goes to the server log at debug level only.
import { lookup as dnsLookup } from 'node:dns';
import net from 'node:net';
import { FetchError, mapNodeError } from './errors.js';
import { forbiddenHostName, isForbiddenAddress, toAllowlist, type Allowlist, type AllowlistInput, type AddressVerdict } from './private-network.js';

/** Where refused addresses are written: debug level only. Only what the guard needs of a logger, so net/ imports none. */
export interface GuardLog {
  debug(obj: object, msg: string): void;
}

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

// A first local try (images served from 127.0.0.1) lands here, so the refusal says how to allow it.
const ALLOW_HINT = '(to fetch from private or local hosts, set FETCH_ALLOWLIST, e.g. 127.0.0.0/8)';

/** The safe reasons of every refusal; none names an address, each says how to allow one. */
export const REFUSED = {
  literal: `blocked: a non-public address ${ALLOW_HINT}`,
  resolved: `blocked: resolves to a non-public address ${ALLOW_HINT}`,
  connected: `blocked: connected to a non-public address ${ALLOW_HINT}`,
  // "localhost" is refused by name whatever the allowlist says, so the way in is an address.
  hostName: 'blocked: a loopback host name (use its address instead, with FETCH_ALLOWLIST set, e.g. 127.0.0.0/8)',
} as const;

const blockedError = (reason: string) => new FetchError(reason, 'blocked', false);

function refuse(reason: string, log: GuardLog | undefined, host: string, address: string, verdict: AddressVerdict): FetchError {
  log?.debug({ host, address, category: verdict.category }, `outbound request refused: ${verdict.reason ?? reason}`);
  return blockedError(reason);
}

/**
 * The addresses `host` (a bare hostname or IP literal) may be contacted at, every one checked, in
 * the resolver's order. Rejects with a FetchError: 'blocked', or 'network' when DNS fails.
 */
export async function resolveAllowed(
  host: string,
  allow: Allowlist,
  resolve: Resolver = defaultResolve,
  log?: GuardLog,
): Promise<ResolvedAddress[]> {
  const family = net.isIP(host);
  if (family !== 0) {
    const v = isForbiddenAddress(host, allow);
    if (v.blocked) throw refuse(REFUSED.literal, log, host, host, v);
    return [{ address: host, family }];
  }
  if (forbiddenHostName(host)) throw blockedError(REFUSED.hostName);
  let addrs: ReadonlyArray<ResolvedAddress>;
  try {
    addrs = await resolve(host);
  } catch (e) {
    throw mapNodeError(e, host);
  }
  if (addrs.length === 0) throw new FetchError(`host not found: ${host}`, 'network', false);
  for (const a of addrs) {
    const v = isForbiddenAddress(a.address, allow);
    if (v.blocked) throw refuse(REFUSED.resolved, log, host, a.address, v);
  }
  return addrs.map((a) => ({ address: a.address, family: a.family }));
}

/** Why the address a socket actually connected to is refused, or undefined when it is allowed. */
export function refuseConnected(host: string, remote: string | undefined, allow: Allowlist, log?: GuardLog): FetchError | undefined {
  if (!remote) return blockedError('blocked: could not verify the connected address');
  const v = isForbiddenAddress(remote, allow);
  return v.blocked ? refuse(REFUSED.connected, log, host, remote, v) : undefined;
}

/**
 * Checks a URL without sending anything: absolute http(s), host not forbidden, and (for names)
 * every address DNS returns allowed. For validating webhook URLs at configure time.
 * Rejects with a FetchError (kind 'invalid-url' or 'blocked', or 'network' if DNS fails).
 */
export async function preflightUrl(
  url: string,
  opts: { allowlist?: AllowlistInput; resolve?: Resolver; log?: GuardLog } = {},
): Promise<void> {
  const target = parseHttpUrl(url);
  await resolveAllowed(bareHost(target.hostname), toAllowlist(opts.allowlist), opts.resolve, opts.log);
}
