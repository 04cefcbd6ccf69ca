// The upstream forwarder on Bun's fetch (docs/CONTRACT.md §10, §12, §18.2, §18.7, §18.11, §18.20):
// - the URL is built from the decision's parts — scheme, the vetted address (or, through a corporate
//   proxy, the name), port, origin-form path — then parsed back and compared with them before
//   anything is sent: no client byte can move the request to another host;
// - TLS verifies the real name (`tls.serverName`) against the runtime's trust store (./trust.ts);
// - every vetted address is tried in order while nothing of the request was sent (dial failures);
// - at most UPSTREAM_MAX_PER_ORIGIN requests per origin in fetch (./scheduler.ts);
// - the response head is due UPSTREAM_FIRST_BYTE_TIMEOUT_MS after the request started or, while its
//   body streams, after the last piece the upstream took (a long upload is not cut while it moves);
// - no redirects followed, no decompression; bodies streamed both ways.
import { isIP } from "node:net";
import { GO_USER_AGENT, type Headers } from "../http/headers.ts";
import { escapeHighBytes } from "../http/target.ts";
import { flat } from "../flat.ts";
import { memoize } from "../memo.ts";
import { series } from "../metrics/series.ts";
import type { ProxyChoice } from "../http/corporate-proxy.ts";
import type { Forwarder, UpstreamRequest, UpstreamResponse } from "./forward-types.ts";
import { UPSTREAM_FIRST_BYTE_TIMEOUT_MS, UPSTREAM_MAX_IN_FLIGHT, UPSTREAM_MAX_PER_ORIGIN } from "./limits.ts";
import { Scheduler } from "./scheduler.ts";
import { relayUpgrade } from "./upgrade.ts";
import { describeUpstreamError, hostPort, isDialFailure, UpstreamError } from "./upstream-error.ts";

const NO_BODY_STATUS = (s: number) => (s >= 100 && s < 200) || s === 204 || s === 304;

/**
 * `scheme://host:port` + the origin-form path, verified by parsing it back (§18.20): the URL the
 * HTTP client gets must name exactly the host and port decided, with no userinfo and no fragment.
 */
export function upstreamUrl(scheme: "http" | "https", host: string, port: number, pathAndQuery: string): string {
  if (!pathAndQuery.startsWith("/")) throw new UpstreamError("request-target rejected");
  const base = originOf(scheme, host, port);
  // (a target's bytes ≥ 0x80 as %XX each: the URL parser would send the UTF-8 of their code points)
  const href = base + escapeHighBytes(pathAndQuery);
  // Always parsed back (§18.20), whatever the path looks like: the check is the point, not a proof
  // that it could be skipped. What the parse gives for one exact string is remembered (a client that
  // repeats its request repeats its URL); the expected origin is parsed once per origin.
  const expected = expectedOrigin(base);
  const got = parsedBack(href);
  if (got === null || got.protocol !== expected.protocol || got.host !== expected.host || got.extra)
    throw new UpstreamError("request-target rejected");
  return href;
}

interface ParsedBack {
  protocol: string;
  host: string;
  /** Userinfo or a fragment: never in a URL we build. */
  extra: boolean;
}

/** `new URL(href)` as upstreamUrl compares it (null: no URL), remembered per exact string (bounded). */
const parsedBack = memoize(
  (href): ParsedBack | null => {
    let u: URL;
    try {
      u = new URL(href);
    } catch {
      return null;
    }
    return { protocol: u.protocol, host: u.host, extra: u.username !== "" || u.password !== "" || u.hash !== "" };
  },
  1024,
  2048,
);

/**
 * `scheme://host:port` (an IPv6 literal bracketed), the same string object for the same origin
 * (bounded: 1,024 hosts): the maps keyed by it (the scheduler's, the parse-back's) find an origin
 * without building and hashing a new string on every request.
 */
function originOf(scheme: "http" | "https", host: string, port: number): string {
  let ports = origins.get(host);
  if (ports === undefined) {
    if (origins.size >= 1024) origins.clear();
    ports = new Map();
    origins.set(host, ports);
  }
  const key = port * 2 + (scheme === "https" ? 1 : 0);
  let o = ports.get(key);
  if (o === undefined) {
    if (ports.size >= 64) ports.clear();
    o = flat(`${scheme}://${hostPort(host, port)}`); // (flat: every request's URL starts with it)
    ports.set(key, o);
  }
  return o;
}
const origins = new Map<string, Map<number, string>>();

/** isIP(host) !== 0, without the parse for the common case: a name (no colon, not dotted digits). */
function isIpLiteral(host: string): boolean {
  if (!host.includes(":") && !DOTTED_DIGITS.test(host)) return false;
  return isIP(host) !== 0;
}
const DOTTED_DIGITS = /^[0-9.]+$/;

interface Origin {
  protocol: string;
  host: string;
}

/** `new URL(base + "/")`'s protocol and host, parsed once per origin (bounded). */
const expectedOrigin = memoize((base): Origin => {
  const u = new URL(`${base}/`);
  return { protocol: u.protocol, host: u.host };
}, 1024);

/** fetch's `tls` option for a host: one object per host (bounded), not one per request. */
const tlsOption = memoize((host): { serverName?: string } => (isIpLiteral(host) ? {} : { serverName: host }), 1024);

function fetchInit(req: UpstreamRequest, body: ReadableStream<Uint8Array> | null, signal: AbortSignal): RequestInit {
  const headers = new globalThis.Headers();
  let ua = false;
  for (const [k, v] of req.headers) {
    headers.append(k, v);
    // getHeader's match in the same pass (a name lowercasing to these 10 ASCII letters has 10 units)
    if (!ua && k.length === 10 && k.toLowerCase() === "user-agent") ua = true;
  }
  // fetch would add `User-Agent: Bun/<version>`; the reference's Go transport adds its own when the
  // workload sent none, and upstreams see that one (some APIs refuse requests without a UA).
  if (!ua) headers.set("user-agent", GO_USER_AGENT);
  const init: RequestInit & Record<string, unknown> = {
    method: req.method,
    headers,
    redirect: "manual",
    decompress: false,
    signal,
    // the runtime's default trust store (./trust.ts); the name verified is the real one
    tls: tlsOption(req.host),
  };
  if (body) {
    init.body = body;
    init.duplex = "half";
  }
  if (req.proxy) init.proxy = proxyOption(req.proxy, req.scheme);
  return init;
}

/** What a corporate proxy gets on CONNECT (https targets): the reference's User-Agent and the auth. */
function proxyOption(
  p: ProxyChoice,
  scheme: "http" | "https",
): string | { url: string; headers: Record<string, string> } {
  const headers: Record<string, string> = {};
  if (scheme === "https") headers["User-Agent"] = GO_USER_AGENT;
  if (p.authorization) headers["Proxy-Authorization"] = p.authorization;
  return Object.keys(headers).length ? { url: p.url, headers } : p.url;
}

/** The response's fields into `out` (Set-Cookie values one by one); returns its Content-Length value, or null. */
function responseHeaders(res: Response, out: Headers): string | null {
  let cookies = false;
  let cl: string | null = null;
  res.headers.forEach((value, name) => {
    if (name === "set-cookie") cookies = true;
    else {
      out.push([name, value]);
      if (name === "content-length") cl = value; // (as headers.get would give it: repeated values joined)
    }
  });
  // Set-Cookie values one by one (never joined), and only asked for when there are some
  if (cookies) for (const c of res.headers.getSetCookie()) out.push(["set-cookie", c]);
  return cl;
}

/**
 * Milliseconds left before the upstream is late with its response head: `limit` from the later of
 * the request's start and the last piece of its body the upstream took (an upload that keeps
 * moving is never cut, however long; one the upstream stopped reading is). ≤ 0: late.
 */
export function firstByteLeft(now: number, startedAt: number, bodyProgressAt: number, limit: number): number {
  return Math.max(startedAt, bodyProgressAt) + limit - now;
}

/** A request waiting for its response head, watched for its first-byte deadline. */
interface HeadWait {
  startedAt: number;
  req: UpstreamRequest;
  ac: AbortController;
  timedOut: boolean;
}

export interface ForwarderOptions {
  /** Default UPSTREAM_FIRST_BYTE_TIMEOUT_MS (tests shorten it). */
  firstByteTimeoutMs?: number;
}

export function createForwarder(opts: ForwarderOptions = {}): Forwarder & { scheduler: Scheduler } {
  const scheduler = new Scheduler(UPSTREAM_MAX_IN_FLIGHT, UPSTREAM_MAX_PER_ORIGIN);
  const firstByteLimit = opts.firstByteTimeoutMs ?? UPSTREAM_FIRST_BYTE_TIMEOUT_MS;
  const FIRST_BYTE_TIMEOUT = `upstream did not answer within ${firstByteLimit / 1000}s`;

  // First-byte deadlines: one sweep over the requests waiting for their response head (waiting for
  // a slot included) every tenth of the limit (at most a second) instead of a timer per request —
  // a deadline passes within a sweep of its moment. The sweeper stops when nothing waits.
  const sweepMs = Math.max(1, Math.min(1000, Math.floor(firstByteLimit / 10)));
  const waitingHeads = new Set<HeadWait>();
  let sweeper: ReturnType<typeof setInterval> | null = null;
  const sweep = () => {
    if (waitingHeads.size === 0) {
      clearInterval(sweeper!);
      sweeper = null;
      return;
    }
    const now = performance.now();
    for (const w of waitingHeads)
      if (firstByteLeft(now, w.startedAt, w.req.body?.progressAt() ?? 0, firstByteLimit) <= 0) {
        // late (measured from the later of its start and the last piece of its body the upstream took)
        waitingHeads.delete(w);
        w.timedOut = true;
        w.ac.abort();
      }
  };
  const watch = (w: HeadWait) => {
    waitingHeads.add(w);
    if (sweeper === null) {
      sweeper = setInterval(sweep, sweepMs);
      sweeper.unref();
    }
  };

  /** One fetch per candidate address until one answers; returns the response or the last error. */
  async function attempt(req: UpstreamRequest, signal: AbortSignal, wait: HeadWait): Promise<Response> {
    // Through a corporate proxy the name is sent (§18.11); directly, only vetted addresses are dialled.
    const dialTargets = req.proxy ? [req.host] : req.addresses;
    if (dialTargets.length === 0) throw new UpstreamError(`dial tcp: lookup ${req.host}: no such host`);
    let lastErr: unknown;
    let addr = dialTargets[0]!;
    for (addr of dialTargets) {
      const url = upstreamUrl(req.scheme, addr, req.port, req.pathAndQuery);
      try {
        return await fetch(url, fetchInit(req, req.body?.open() ?? null, signal));
      } catch (e) {
        lastErr = e;
        if (wait.timedOut) throw new UpstreamError(FIRST_BYTE_TIMEOUT);
        if (req.signal.aborted) throw new UpstreamError("request cancelled");
        if (!isDialFailure(e) || req.body?.started()) break;
      }
    }
    throw new UpstreamError(describeUpstreamError(lastErr, { host: req.host, addr, port: req.port }));
  }

  return {
    scheduler,
    upgrade(req, client, onResponse) {
      return relayUpgrade(client, req, onResponse);
    },
    async forward(req: UpstreamRequest): Promise<UpstreamResponse> {
      // One controller per request: the client going away aborts it (body included), and so does the
      // sweep of first-byte deadlines, which watches it until the response head (waiting for a slot
      // included; not AbortSignal.timeout, which would keep a 300 s timer alive per request). The
      // caller's controller when it hands it over (one controller per request, not two linked).
      let ac = req.controller;
      if (!ac) {
        const own = new AbortController();
        if (req.signal.aborted) own.abort();
        else req.signal.addEventListener("abort", () => own.abort(), { once: true });
        ac = own;
      }
      const wait: HeadWait = { startedAt: performance.now(), req, ac, timedOut: false };
      watch(wait);
      const signal = ac.signal;
      let release: (() => void) | undefined;
      try {
        const origin = originOf(req.scheme, req.host, req.port);
        // a free slot is taken at once (no promise); otherwise wait in the origin's queue
        release = (!signal.aborted && scheduler.tryAcquire(origin)) || undefined;
        let sent = wait.startedAt; // (a slot taken at once: sent now)
        if (release === undefined) {
          release = await scheduler.acquire(origin, signal).catch(() => {
            throw new UpstreamError(wait.timedOut ? FIRST_BYTE_TIMEOUT : "request cancelled");
          });
          sent = performance.now();
        }
        const res = await attempt(req, signal, wait);
        series.upstreamTtfb.observe(undefined, (performance.now() - sent) / 1000);
        const headers: Headers = [];
        const cl = responseHeaders(res, headers);
        const noBody = req.method === "HEAD" || NO_BODY_STATUS(res.status);
        if (noBody) await res.body?.cancel().catch(() => {});
        const done = release;
        release = undefined; // from here the caller releases, when the body was relayed
        return {
          status: res.status,
          statusText: res.statusText,
          headers,
          // a getter: fetch makes the ReadableStream when `body` is first read, and a small body of
          // known length is read with readAll() instead (≈1 µs per request less)
          get body() {
            return noBody ? null : res.body;
          },
          readAll: () => res.bytes(),
          contentLength: cl !== null && /^\d+$/.test(cl) ? Number(cl) : null,
          release: done,
        };
      } finally {
        waitingHeads.delete(wait);
        release?.();
      }
    },
  };
}
