import { randomInt } from "node:crypto";
import { lookup as dnsLookup } from "node:dns";
import http, {} from "node:http";
import net from "node:net";
import tls from "node:tls";
import {
  forbiddenHostName,
  isForbiddenAddress,
  toAllowlist
} from "./address-policy.js";
class FetchError extends Error {
  name = "FetchError";
  /** Short, human-readable, safe to show on the status page. Contains "blocked" for every SSRF refusal. */
  reason;
  kind;
  /** Whether trying again later could succeed (timeouts, connection errors, 429, 5xx). */
  retryable;
  /** HTTP status when kind === 'http'. */
  status;
  /** Parsed Retry-After, in ms, when the server sent one. */
  retryAfterMs;
  /** How many attempts were made before giving up (set by the retry loop). */
  attempts = 1;
  constructor(reason, kind, retryable, extra = {}) {
    super(reason, extra.cause === void 0 ? void 0 : { cause: extra.cause });
    this.reason = reason;
    this.kind = kind;
    this.retryable = retryable;
    if (extra.status !== void 0) this.status = extra.status;
    if (extra.retryAfterMs !== void 0) this.retryAfterMs = extra.retryAfterMs;
  }
}
const DEFAULTS = {
  connectTimeoutMs: 5e3,
  timeoutMs: 3e4,
  retries: 3,
  retryBaseMs: 500,
  maxRetryDelayMs: 3e4,
  maxBytes: 25 * 1024 * 1024,
  maxRedirects: 5,
  userAgent: "image-csv-processor/0.1"
};
async function downloadImage(url, opts = {}) {
  const allow = toAllowlist(opts.allowlist);
  const start = parseHttpUrl(url);
  const maxBytes = opts.maxBytes ?? DEFAULTS.maxBytes;
  const maxRedirects = opts.maxRedirects ?? DEFAULTS.maxRedirects;
  return withRetries(opts, opts.retries ?? DEFAULTS.retries, async (signal) => {
    let current = start;
    for (let hops = 0; ; hops++) {
      const res = await exchange(current, {
        method: "GET",
        headers: { accept: "image/*,*/*;q=0.8", "user-agent": opts.userAgent ?? DEFAULTS.userAgent },
        maxBytes,
        wantBody: (s) => s >= 200 && s < 300,
        allow,
        connectTimeoutMs: opts.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs,
        resolve: opts.resolve,
        signal
      });
      if (isRedirect(res.status)) {
        const location = res.headers.location;
        if (!location) throw httpError(res.status, res.headers);
        if (hops + 1 > maxRedirects) throw new FetchError("too many redirects", "redirect", false);
        let next;
        try {
          next = new URL(location, current);
        } catch {
          throw new FetchError("redirect to an invalid URL", "redirect", false);
        }
        if (next.protocol !== "http:" && next.protocol !== "https:") {
          throw new FetchError(`redirect to a non-http(s) URL (${next.protocol})`, "redirect", false);
        }
        next.hash = "";
        current = next;
        continue;
      }
      if (res.status < 200 || res.status >= 300 || !res.bytes) throw httpError(res.status, res.headers);
      const ct = headerString(res.headers["content-type"]);
      return { bytes: res.bytes, finalUrl: current.href, status: res.status, ...ct ? { contentType: ct } : {} };
    }
  });
}
async function postJson(url, body, headers = {}, opts = {}) {
  const allow = toAllowlist(opts.allowlist);
  const target = parseHttpUrl(url);
  const payload = Buffer.from(body, "utf8");
  return withRetries(opts, opts.retries ?? 0, async (signal) => {
    const started = performance.now();
    const res = await exchange(target, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "user-agent": opts.userAgent ?? DEFAULTS.userAgent,
        ...lowerKeys(headers),
        "content-length": String(payload.length)
      },
      body: payload,
      maxBytes: 0,
      wantBody: () => false,
      allow,
      connectTimeoutMs: opts.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs,
      resolve: opts.resolve,
      signal
    });
    return { status: res.status, durationMs: Math.round(performance.now() - started) };
  });
}
async function preflightUrl(url, opts = {}) {
  const allow = toAllowlist(opts.allowlist);
  const target = parseHttpUrl(url);
  const host = bareHost(target.hostname);
  if (net.isIP(host)) {
    const v = isForbiddenAddress(host, allow);
    if (v.blocked) throw blockedError(v.reason);
    return;
  }
  const byName = forbiddenHostName(host);
  if (byName) throw blockedError(byName);
  let addrs;
  try {
    addrs = await (opts.resolve ?? defaultResolve)(host);
  } catch (e) {
    throw mapNodeError(e, host);
  }
  checkResolved(host, addrs, allow);
}
function parseRetryAfter(value, now = Date.now()) {
  if (value === void 0) return void 0;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Math.min(Number(v), 86400 * 365) * 1e3;
  const t = Date.parse(v);
  if (Number.isNaN(t)) return void 0;
  return Math.max(0, t - now);
}
function backoffDelay(failedAttempt, baseMs, maxMs, retryAfterMs) {
  const exp = Math.min(maxMs, baseMs * 2 ** Math.min(failedAttempt - 1, 30));
  const half = Math.floor(exp / 2);
  const jittered = half + (half > 0 ? randomInt(0, half + 1) : 0);
  if (retryAfterMs === void 0) return Math.min(jittered, maxMs);
  return Math.min(Math.max(retryAfterMs, jittered), maxMs);
}
function parseHttpUrl(url) {
  let u;
  try {
    u = new URL(url);
  } catch {
    throw new FetchError("invalid URL", "invalid-url", false);
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") {
    throw new FetchError(`unsupported URL scheme ${u.protocol} (only http and https)`, "invalid-url", false);
  }
  if (!u.hostname) throw new FetchError("invalid URL: no host", "invalid-url", false);
  u.hash = "";
  return u;
}
const bareHost = (hostname) => hostname.startsWith("[") && hostname.endsWith("]") ? hostname.slice(1, -1) : hostname;
const blockedError = (reason) => new FetchError(reason ?? "blocked: forbidden address", "blocked", false);
const isRedirect = (s) => s === 301 || s === 302 || s === 303 || s === 307 || s === 308;
function headerString(v) {
  return Array.isArray(v) ? v[0] : v;
}
function lowerKeys(h) {
  const out = {};
  for (const [k, v] of Object.entries(h)) out[k.toLowerCase()] = v;
  return out;
}
function httpError(status, headers) {
  const retryable = status === 429 || status >= 500 && status <= 599;
  const retryAfterMs = parseRetryAfter(headerString(headers["retry-after"]));
  const reason = isRedirect(status) ? `HTTP ${status} without a Location header` : `HTTP ${status}`;
  return new FetchError(reason, "http", retryable, {
    status,
    ...retryAfterMs !== void 0 ? { retryAfterMs } : {}
  });
}
const defaultResolve = (hostname) => new Promise((resolve, reject) => {
  dnsLookup(hostname, { all: true, verbatim: true }, (err, addresses) => {
    if (err) reject(err);
    else resolve(addresses);
  });
});
function checkResolved(host, addrs, allow) {
  if (addrs.length === 0) throw new FetchError(`host not found: ${host}`, "network", false);
  for (const a of addrs) {
    const v = isForbiddenAddress(a.address, allow);
    if (v.blocked) {
      throw blockedError(`blocked: ${host} resolves to ${a.address}, ${v.noun ? `a${/^[aeio]/i.test(v.noun) ? "n" : ""} ${v.noun}` : "a forbidden address"}`);
    }
  }
}
function guardedLookup(allow, resolve) {
  return (hostname, options, callback) => {
    const byName = forbiddenHostName(hostname);
    if (byName) {
      callback(blockedError(byName), "", 0);
      return;
    }
    (resolve ?? defaultResolve)(hostname).then(
      (addrs) => {
        try {
          checkResolved(hostname, addrs, allow);
        } catch (e) {
          callback(e, "", 0);
          return;
        }
        const wanted = options.family === 4 || options.family === 6 ? options.family : 0;
        const usable = addrs.filter((a) => wanted === 0 || a.family === wanted).map((a) => ({ address: a.address, family: a.family }));
        if (usable.length === 0) {
          callback(new FetchError(`host not found: ${hostname}`, "network", false), "", 0);
          return;
        }
        if (options.all) callback(null, usable);
        else callback(null, usable[0].address, usable[0].family);
      },
      (err) => callback(mapNodeError(err, hostname), "", 0)
    );
  };
}
function mapNodeError(e, host) {
  if (e instanceof FetchError) return e;
  const err = e;
  const code = typeof err?.code === "string" ? err.code : "";
  switch (code) {
    case "ENOTFOUND":
      return new FetchError(`host not found${host ? `: ${host}` : ""}`, "network", false, { cause: e });
    case "EAI_AGAIN":
      return new FetchError(`DNS lookup failed${host ? ` for ${host}` : ""} (temporary)`, "network", true, { cause: e });
    case "ECONNREFUSED":
      return new FetchError("connection refused", "network", true, { cause: e });
    case "ECONNRESET":
    case "EPIPE":
      return new FetchError("connection reset", "network", true, { cause: e });
    case "ETIMEDOUT":
      return new FetchError("connection timed out", "timeout", true, { cause: e });
    case "EHOSTUNREACH":
    case "ENETUNREACH":
    case "EADDRNOTAVAIL":
      return new FetchError("host unreachable", "network", true, { cause: e });
  }
  if (code.startsWith("HPE_") || code === "ERR_INVALID_HTTP_RESPONSE") {
    return new FetchError(`invalid HTTP response (${code})`, "bad-response", false, { cause: e });
  }
  if (code.startsWith("ERR_TLS_") || code.startsWith("ERR_SSL_") || /CERT|SELF_SIGNED|UNABLE_TO/.test(code)) {
    return new FetchError(`TLS error (${code})`, "network", false, { cause: e });
  }
  const msg = err?.message ? String(err.message).slice(0, 120) : "unknown error";
  return new FetchError(`network error: ${code || msg}`, "network", true, { cause: e });
}
function exchange(target, rq) {
  return new Promise((resolvePromise, rejectPromise) => {
    let settled = false;
    let connectTimer;
    let req;
    let res;
    let socket;
    const onAbort = () => fail(rq.signal.reason);
    const cleanup = () => {
      if (connectTimer) clearTimeout(connectTimer);
      rq.signal.removeEventListener("abort", onAbort);
    };
    function fail(e) {
      if (settled) return;
      settled = true;
      cleanup();
      const err = rq.signal.aborted && rq.signal.reason instanceof FetchError ? rq.signal.reason : mapNodeError(e, target.hostname);
      res?.destroy();
      req?.destroy();
      socket?.destroy();
      rejectPromise(err);
    }
    function succeed(v) {
      if (settled) return;
      settled = true;
      cleanup();
      res?.destroy();
      req?.destroy();
      socket?.destroy();
      resolvePromise(v);
    }
    if (rq.signal.aborted) {
      fail(rq.signal.reason);
      return;
    }
    rq.signal.addEventListener("abort", onAbort, { once: true });
    try {
      const host = bareHost(target.hostname);
      const isHttps = target.protocol === "https:";
      const port = target.port ? Number(target.port) : isHttps ? 443 : 80;
      const literal = net.isIP(host) !== 0;
      if (literal) {
        const v = isForbiddenAddress(host, rq.allow);
        if (v.blocked) return fail(blockedError(v.reason));
      } else {
        const byName = forbiddenHostName(host);
        if (byName) return fail(blockedError(byName));
      }
      const createConnection = () => {
        const lookup = guardedLookup(rq.allow, rq.resolve);
        const s = isHttps ? tls.connect({
          host,
          port,
          lookup,
          ALPNProtocols: ["http/1.1"],
          ...literal ? {} : { servername: host }
        }) : net.connect({ host, port, lookup });
        socket = s;
        s.prependOnceListener("connect", () => {
          const remote = s.remoteAddress;
          const v = remote ? isForbiddenAddress(remote, rq.allow) : { blocked: true, reason: void 0 };
          if (v.blocked) {
            const err = blockedError(v.reason ?? "blocked: could not verify the connected address");
            s.destroy(err);
            fail(err);
          }
        });
        s.once(isHttps ? "secureConnect" : "connect", () => {
          if (connectTimer) clearTimeout(connectTimer);
          connectTimer = void 0;
        });
        connectTimer = setTimeout(() => {
          fail(new FetchError(`connect timed out after ${rq.connectTimeoutMs} ms`, "timeout", true));
        }, rq.connectTimeoutMs);
        s.on("error", (e) => fail(e));
        return s;
      };
      req = http.request({
        method: rq.method,
        host,
        port,
        path: `${target.pathname}${target.search}`,
        setHost: false,
        headers: {
          host: target.host,
          "accept-encoding": "identity",
          connection: "close",
          ...rq.headers
        },
        createConnection
      });
      req.on("error", (e) => fail(e));
      req.on("response", (r) => {
        res = r;
        r.on("error", (e) => fail(e));
        const status = r.statusCode ?? 0;
        if (!rq.wantBody(status)) return succeed({ status, headers: r.headers });
        const enc = headerString(r.headers["content-encoding"])?.trim().toLowerCase();
        if (enc && enc !== "identity") {
          return fail(new FetchError(`unsupported content-encoding: ${enc.slice(0, 40)}`, "bad-response", false));
        }
        const declared = Number(headerString(r.headers["content-length"]));
        if (Number.isFinite(declared) && declared > rq.maxBytes) return fail(tooLarge(rq.maxBytes));
        const prealloc = Number.isFinite(declared) && declared >= 0 && status !== 204 ? new Uint8Array(declared) : void 0;
        const chunks = [];
        let total = 0;
        r.on("data", (chunk) => {
          if (settled) return;
          if (total + chunk.length > rq.maxBytes) return fail(tooLarge(rq.maxBytes));
          if (prealloc) {
            if (total + chunk.length > prealloc.length) {
              return fail(new FetchError("invalid HTTP response (body longer than Content-Length)", "bad-response", false));
            }
            prealloc.set(chunk, total);
          } else {
            chunks.push(chunk);
          }
          total += chunk.length;
        });
        r.on("end", () => {
          if (!r.complete || prealloc && total !== prealloc.length) {
            return fail(new FetchError("connection closed before the body was complete", "network", true));
          }
          let out = prealloc;
          if (!out) {
            out = new Uint8Array(total);
            let off = 0;
            for (const c of chunks) {
              out.set(c, off);
              off += c.length;
            }
          }
          succeed({ status, headers: r.headers, bytes: out });
        });
        r.on("close", () => {
          if (!settled) fail(new FetchError("connection closed before the body was complete", "network", true));
        });
      });
      req.on("close", () => {
        if (!settled && !res) fail(new FetchError("connection closed before a response", "network", true));
      });
      req.end(rq.body);
    } catch (e) {
      fail(e);
    }
  });
}
const tooLarge = (max) => new FetchError(`too large: more than ${max} bytes`, "too-large", false);
async function withRetries(opts, retries, attemptFn) {
  const timeoutMs = opts.timeoutMs ?? DEFAULTS.timeoutMs;
  const base = opts.retryBaseMs ?? DEFAULTS.retryBaseMs;
  const maxDelay = opts.maxRetryDelayMs ?? DEFAULTS.maxRetryDelayMs;
  const outer = opts.signal;
  for (let attempt = 1; ; attempt++) {
    if (outer?.aborted) throw finalError(abortedError(), attempt - 1 || 1);
    const ctl = new AbortController();
    const onOuter = () => ctl.abort(abortedError());
    outer?.addEventListener("abort", onOuter, { once: true });
    const timer = setTimeout(
      () => ctl.abort(new FetchError(`timed out after ${timeoutMs} ms`, "timeout", true)),
      timeoutMs
    );
    let err;
    try {
      return await attemptFn(ctl.signal);
    } catch (e) {
      err = e instanceof FetchError ? e : mapNodeError(e);
    } finally {
      clearTimeout(timer);
      outer?.removeEventListener("abort", onOuter);
    }
    if (!err.retryable || attempt > retries || outer?.aborted) throw finalError(err, attempt);
    const delayMs = backoffDelay(attempt, base, maxDelay, err.retryAfterMs);
    try {
      opts.onRetry?.({ attempt, delayMs, error: err });
    } catch {
    }
    try {
      await sleep(delayMs, outer);
    } catch {
      throw finalError(abortedError(), attempt);
    }
  }
}
const abortedError = () => new FetchError("aborted", "aborted", false);
function finalError(err, attempts) {
  if (attempts <= 1 || err.kind === "aborted") {
    err.attempts = attempts;
    return err;
  }
  const out = new FetchError(`${err.reason} (after ${attempts} attempts)`, err.kind, err.retryable, {
    ...err.status !== void 0 ? { status: err.status } : {},
    ...err.retryAfterMs !== void 0 ? { retryAfterMs: err.retryAfterMs } : {},
    cause: err
  });
  out.attempts = attempts;
  return out;
}
function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new Error("aborted"));
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(new Error("aborted"));
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
export {
  DEFAULTS,
  FetchError,
  backoffDelay,
  downloadImage,
  parseRetryAfter,
  postJson,
  preflightUrl
};
//# sourceMappingURL=guarded-fetch.js.map
