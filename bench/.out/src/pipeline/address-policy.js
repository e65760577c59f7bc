import ipaddr from "ipaddr.js";
function parseAllowlist(cidrs) {
  const entries = [];
  for (const raw of cidrs) {
    const s = raw.trim();
    if (!s) continue;
    let parsed;
    try {
      parsed = ipaddr.parseCIDR(s);
    } catch {
      throw new Error(`invalid allowlist entry "${raw}": expected a CIDR like 10.0.0.0/8 or fd00::/8`);
    }
    entries.push([parsed[0], parsed[1]]);
  }
  return { kind: "allowlist", entries, source: [...cidrs] };
}
const EMPTY = { kind: "allowlist", entries: [], source: [] };
function toAllowlist(input) {
  if (!input) return EMPTY;
  if (isAllowlist(input)) return input;
  return parseAllowlist(input);
}
function isAllowlist(x) {
  return !Array.isArray(x) && x.kind === "allowlist";
}
const v4 = (cidr, category, description) => {
  const [a, n] = ipaddr.IPv4.parseCIDR(cidr);
  return [a, n, category, description];
};
const v6 = (cidr, category, description) => {
  const [a, n] = ipaddr.IPv6.parseCIDR(cidr);
  return [a, n, category, description];
};
const V4_RANGES = [
  v4("255.255.255.255/32", "broadcast", "broadcast address"),
  v4("0.0.0.0/8", "unspecified", 'unspecified ("this network") address'),
  v4("127.0.0.0/8", "loopback", "loopback address"),
  v4("10.0.0.0/8", "private", "private address"),
  v4("172.16.0.0/12", "private", "private address"),
  v4("192.168.0.0/16", "private", "private address"),
  v4("100.64.0.0/10", "cgnat", "carrier-grade NAT (shared) address"),
  v4("169.254.0.0/16", "link-local", "link-local address"),
  v4("192.0.0.0/24", "reserved", "IETF protocol-assignment (reserved) address"),
  v4("192.0.2.0/24", "documentation", "documentation address"),
  v4("198.51.100.0/24", "documentation", "documentation address"),
  v4("203.0.113.0/24", "documentation", "documentation address"),
  v4("198.18.0.0/15", "benchmarking", "benchmarking address"),
  v4("192.88.99.0/24", "reserved", "reserved (deprecated 6to4 relay) address"),
  v4("224.0.0.0/4", "multicast", "multicast address"),
  v4("240.0.0.0/4", "reserved", "reserved address")
];
const V6_RANGES = [
  v6("::/128", "unspecified", "unspecified address"),
  v6("::1/128", "loopback", "loopback address"),
  v6("fe80::/10", "link-local", "link-local address"),
  v6("fec0::/10", "site-local", "site-local address"),
  v6("fc00::/7", "unique-local", "unique-local (private) address"),
  v6("ff00::/8", "multicast", "multicast address"),
  v6("::/96", "reserved", "IPv4-compatible (deprecated) address"),
  v6("::ffff:0:0:0/96", "reserved", "IPv4-translated address"),
  v6("64:ff9b:1::/48", "reserved", "local-use NAT64 address"),
  v6("100::/64", "reserved", "discard-only address"),
  v6("2001::/32", "teredo", "Teredo tunnel address"),
  v6("2001:2::/48", "benchmarking", "benchmarking address"),
  v6("2001:db8::/32", "documentation", "documentation address"),
  v6("3fff::/20", "documentation", "documentation address"),
  v6("2001::/23", "reserved", "IETF protocol-assignment (reserved) address")
];
const V6_GLOBAL_UNICAST = ipaddr.IPv6.parseCIDR("2000::/3");
const V6_MAPPED = ipaddr.IPv6.parseCIDR("::ffff:0:0/96");
const V6_NAT64 = ipaddr.IPv6.parseCIDR("64:ff9b::/96");
const V6_6TO4 = ipaddr.IPv6.parseCIDR("2002::/16");
function v4FromParts(hi, lo) {
  return new ipaddr.IPv4([hi >> 8, hi & 255, lo >> 8, lo & 255]);
}
function allowlisted(addr, allow) {
  for (const [net, bits] of allow.entries) {
    if (net.kind() === addr.kind() && addr.match(net, bits)) return true;
  }
  return false;
}
function parseAddress(ip) {
  let s = ip.trim();
  if (s.startsWith("[") && s.endsWith("]")) s = s.slice(1, -1);
  const pct = s.indexOf("%");
  if (pct !== -1) s = s.slice(0, pct);
  if (!ipaddr.isValid(s)) return null;
  try {
    return ipaddr.parse(s);
  } catch {
    return null;
  }
}
const article = (noun) => /^(?:[aeio]|u(?!ni))/i.test(noun) ? `an ${noun}` : `a ${noun}`;
function blocked(shown, category, noun) {
  return { blocked: true, category, reason: `blocked: ${shown} is ${article(noun)}`, noun };
}
function classifyV4(a, shown) {
  for (const [net, bits, category, description] of V4_RANGES) {
    if (a.match(net, bits)) return blocked(shown, category, description);
  }
  return { blocked: false, category: "global" };
}
function classifyV6(a, shown) {
  if (a.match(V6_MAPPED)) {
    const inner = a.toIPv4Address();
    const verdict = classifyV4(inner, shown);
    return verdict.blocked ? blocked(shown, verdict.category, `IPv4-mapped ${descriptionOf(verdict)} (${inner.toString()})`) : verdict;
  }
  for (const [prefix, innerOf, label] of [
    [V6_NAT64, (p) => v4FromParts(p[6], p[7]), "NAT64"],
    [V6_6TO4, (p) => v4FromParts(p[1], p[2]), "6to4"]
  ]) {
    if (a.match(prefix)) {
      const inner = innerOf(a.parts);
      const verdict = classifyV4(inner, shown);
      return verdict.blocked ? blocked(shown, verdict.category, `${label} address embedding ${article(descriptionOf(verdict))} (${inner.toString()})`) : { blocked: false, category: "global" };
    }
  }
  for (const [net, bits, category, description] of V6_RANGES) {
    if (a.match(net, bits)) return blocked(shown, category, description);
  }
  if (!a.match(V6_GLOBAL_UNICAST)) return blocked(shown, "reserved", "reserved address (not global unicast)");
  return { blocked: false, category: "global" };
}
function descriptionOf(v) {
  return v.noun ?? `${v.category} address`;
}
function isForbiddenAddress(ip, allowlist) {
  const addr = parseAddress(ip);
  const shown = ip.trim();
  if (!addr) return { blocked: true, category: "invalid", reason: `blocked: ${shown} is not an IP address` };
  const allow = toAllowlist(allowlist);
  if (allow.entries.length > 0) {
    if (allowlisted(addr, allow)) return { blocked: false, category: "allowlisted" };
    if (addr.kind() === "ipv6" && addr.match(V6_MAPPED) && allowlisted(addr.toIPv4Address(), allow)) {
      return { blocked: false, category: "allowlisted" };
    }
  }
  return addr.kind() === "ipv4" ? classifyV4(addr, shown) : classifyV6(addr, shown);
}
function isAllowedAddress(ip, allowlist) {
  return !isForbiddenAddress(ip, allowlist).blocked;
}
function forbiddenHostName(hostname) {
  const h = hostname.toLowerCase().replace(/\.$/, "");
  if (h === "localhost" || h.endsWith(".localhost")) return `blocked: ${hostname} is a loopback host name`;
  return void 0;
}
export {
  forbiddenHostName,
  isAllowedAddress,
  isForbiddenAddress,
  parseAddress,
  parseAllowlist,
  toAllowlist
};
//# sourceMappingURL=address-policy.js.map
