// Audit line encoding, byte for byte as the reference's Go json.Encoder output (docs/CONTRACT.md §11),
// plus the Phase 2 keys (shared/PHASE2.md §1.5) appended after auth_mode in their fixed order, each
// omitted when empty/false/zero/empty-array, so a Phase 1 request still encodes byte-identically.
import { goJsonString } from "../gojson/encode.ts";
import type { AuditEntry } from "./types.ts";

/**
 * Wall-clock now in nanoseconds since the epoch (sub-millisecond digits from the monotonic clock);
 * `now`: a performance.now() the caller already read.
 */
export function nowNs(now = performance.now()): bigint {
  return BigInt(Math.floor((performance.timeOrigin + now) * 1e6));
}

const pad = (n: number | bigint, w = 2) => String(n).padStart(w, "0");

/** Go time.RFC3339Nano in UTC: fraction with trailing zeros trimmed, none for whole seconds. */
export function rfc3339Nano(ns: bigint): string {
  const sec = ns / 1_000_000_000n;
  return rfc3339(Number(sec), Number(ns - sec * 1_000_000_000n));
}

/**
 * rfc3339Nano for milliseconds since the epoch with their fraction (no BigInt: the data path's
 * timestamp). A double holds such a time to ≈0.25 µs, as finely as performance.now() reads it.
 */
export function rfc3339NanoMs(ms: number): string {
  let sec = Math.floor(ms / 1000);
  let nanos = Math.floor((ms - sec * 1000) * 1e6);
  // (a quotient rounded up to the next second, or a fraction rounded up to a whole one)
  if (nanos < 0) {
    sec--;
    nanos += 1e9;
  } else if (nanos >= 1e9) {
    sec++;
    nanos -= 1e9;
  }
  return rfc3339(sec, nanos);
}

function rfc3339(sec: number, nanos: number): string {
  if (sec !== cachedSecond) {
    // the date and time up to the second change once a second: formatted once
    const d = new Date(sec * 1000);
    cachedSecond = sec;
    cachedSecondText =
      `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}T` +
      `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
  }
  return nanos === 0 ? `${cachedSecondText}Z` : `${cachedSecondText}${fraction(nanos)}Z`;
}

/** ".ddddddddd" for 1–999,999,999 ns, trailing zeros trimmed (without BigInt string work or a regex). */
function fraction(n: number): string {
  let digits = 9;
  while (n % 10 === 0) {
    n /= 10;
    digits--;
  }
  const s = String(n);
  return `.${"00000000".slice(0, digits - s.length)}${s}`;
}

let cachedSecond = -1;
let cachedSecondText = "";

/** An entry's `ts` in nanoseconds since the epoch (for the OTLP export's timeUnixNano). */
export function entryTsNs(ts: AuditEntry["ts"]): bigint {
  if (typeof ts === "bigint") return ts;
  if (typeof ts === "number") return BigInt(Math.floor(ts * 1e6));
  if (ts instanceof Date) return BigInt(ts.getTime()) * 1_000_000n;
  // RFC 3339 with up to nine fraction digits: Date.parse keeps milliseconds only, so add the rest.
  const m = /^(.*?)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/.exec(ts);
  if (!m) return 0n;
  const secMs = Date.parse(`${m[1]}${m[3]}`);
  if (Number.isNaN(secMs)) return 0n;
  return BigInt(secMs) * 1_000_000n + BigInt((m[2] ?? "").padEnd(9, "0") || "0");
}

export interface LineContext {
  proxyId: string;
  authMode?: string;
}

type Value = string | number | boolean | string[];

/**
 * Characters Go's json.Encoder writes as they are (printable ASCII but `"`, `\`, `<`, `>`, `&`): a
 * string made only of them is quoted without going through the escaper — every audit value of an
 * ordinary request (ids, methods, hosts, paths, statuses) is.
 */
const JSON_PLAIN = /^[ !#-%'-;=?-[\]-~]*$/;

/** The statuses, plain JSON text each (no escaping to look for). */
const STATUS_TEXT: Readonly<Record<string, string>> = {
  injected: "injected",
  passthrough: "passthrough",
  denied: "denied",
  agent_error: "agent_error",
  tls_error: "tls_error",
};

/** A JSON string's content, without its quotes (the quotes are in the line's constant parts). */
function inner(s: string): string {
  return JSON_PLAIN.test(s) ? s : goJsonString(s).slice(1, -1);
}

function encodeValue(v: Value): string {
  if (typeof v === "string") return `"${inner(v)}"`;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  return "[" + v.map(goJsonString).join(",") + "]";
}

/** The context's values, encoded once per context object (they are the same on every line). */
function encodedContext(ctx: LineContext): { proxyId: string; authMode: string } {
  let c = contexts.get(ctx);
  if (c === undefined || c.for !== ctx.proxyId || c.forAuth !== ctx.authMode) {
    c = {
      for: ctx.proxyId,
      forAuth: ctx.authMode,
      proxyId: inner(ctx.proxyId),
      authMode: ctx.authMode ? inner(ctx.authMode) : "",
    };
    contexts.set(ctx, c);
  }
  return c;
}
const contexts = new WeakMap<
  LineContext,
  { for: string; forAuth: string | undefined; proxyId: string; authMode: string }
>();

/**
 * One audit line with its trailing newline. `prevSha256` (hash chain, PHASE2 §17) is the last key;
 * `traceparent` is never encoded (it only feeds the OTLP export's trace/span ids).
 */
export function encodeAuditLine(e: AuditEntry, ctx: LineContext, prevSha256?: string): string {
  // (the text of rfc3339Nano needs no escaping: digits, '-', ':', 'T', '.', 'Z')
  const ts =
    typeof e.ts === "number"
      ? rfc3339NanoMs(e.ts)
      : typeof e.ts === "bigint"
        ? rfc3339Nano(e.ts)
        : typeof e.ts === "string"
          ? inner(e.ts)
          : rfc3339NanoMs(e.ts.getTime());
  // Keys and quotes are constant parts of the templates (none needs escaping), values go in as the
  // contents of their JSON strings: few parts, so the line is cheap to flatten when it is written.
  const c = encodedContext(ctx);
  let out =
    `{"schema_version":1,"ts":"${ts}","proxy_id":"${c.proxyId}","request_id":"${inner(e.requestId)}",` +
    `"client_ip":"${inner(e.clientIp)}","method":"${inner(e.method)}","host":"${inner(e.host)}",` +
    `"path":"${inner(e.path)}"`;
  if (e.service) out += `,"service":"${inner(e.service)}"`;
  if (e.credentialHandle) out += `,"credential_handle":"${inner(e.credentialHandle)}"`;
  if (e.injectionPoint) out += `,"injection_point":"${inner(e.injectionPoint)}"`;
  const status = STATUS_TEXT[e.status] ?? inner(e.status);
  out += e.upstreamStatus
    ? `,"status":"${status}","upstream_status":${e.upstreamStatus},"latency_ms":${e.latencyMs}`
    : `,"status":"${status}","latency_ms":${e.latencyMs}`;
  if (ctx.authMode) out += `,"auth_mode":"${c.authMode}"`;
  // Phase 2 keys, PHASE2 §1.5 order.
  if (e.protocol) out += `,"protocol":${encodeValue(e.protocol)}`;
  if (e.upstreamProtocol) out += `,"upstream_protocol":${encodeValue(e.upstreamProtocol)}`;
  if (e.workload) out += `,"workload":${encodeValue(e.workload)}`;
  if (e.workloadVerified) out += `,"workload_verified":true`;
  if (e.hostPattern) out += `,"host_pattern":${encodeValue(e.hostPattern)}`;
  if (e.reason) out += `,"reason":${encodeValue(e.reason)}`;
  if (e.rule) out += `,"rule":${encodeValue(e.rule)}`;
  if (e.placeholderService) out += `,"placeholder_service":${encodeValue(e.placeholderService)}`;
  if (e.credentialHandles?.length) out += `,"credential_handles":${encodeValue(e.credentialHandles)}`;
  if (e.injectionPoints?.length) out += `,"injection_points":${encodeValue(e.injectionPoints)}`;
  if (prevSha256) out += `,"prev_sha256":${encodeValue(prevSha256)}`;
  return out + "}\n";
}
