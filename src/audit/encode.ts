// Audit line encoding, byte for byte as the reference's Go json.Encoder output (docs/CONTRACT.md §11),
// plus the Phase 2 keys (shared/PHASE2.md §1.5) appended after auth_mode in their fixed order, each
// omitted when empty/false/zero/empty-array, so a Phase 1 request still encodes byte-identically.
import { goJsonString } from "../gojson/encode.ts";
import type { AuditEntry } from "./types.ts";

/** Wall-clock now in nanoseconds since the epoch (sub-millisecond digits from the monotonic clock). */
export function nowNs(): bigint {
  return BigInt(Math.floor((performance.timeOrigin + performance.now()) * 1e6));
}

const pad = (n: number | bigint, w = 2) => String(n).padStart(w, "0");

/** Go time.RFC3339Nano in UTC: fraction with trailing zeros trimmed, none for whole seconds. */
export function rfc3339Nano(ns: bigint): string {
  const sec = ns / 1_000_000_000n;
  const frac = ns - sec * 1_000_000_000n;
  const f = frac === 0n ? "" : fraction(Number(frac));
  if (sec !== cachedSecond) {
    // the date and time up to the second change once a second: formatted once
    const d = new Date(Number(sec) * 1000);
    cachedSecond = sec;
    cachedSecondText =
      `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}T` +
      `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
  }
  return `${cachedSecondText}${f}Z`;
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

let cachedSecond = -1n;
let cachedSecondText = "";

/** An entry's `ts` in nanoseconds since the epoch (for the OTLP export's timeUnixNano). */
export function entryTsNs(ts: AuditEntry["ts"]): bigint {
  if (typeof ts === "bigint") return ts;
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

function jsonString(s: string): string {
  return JSON_PLAIN.test(s) ? `"${s}"` : goJsonString(s);
}

function encodeValue(v: Value): string {
  if (typeof v === "string") return jsonString(v);
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
      proxyId: jsonString(ctx.proxyId),
      authMode: ctx.authMode ? jsonString(ctx.authMode) : "",
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
  const ts =
    typeof e.ts === "bigint"
      ? rfc3339Nano(e.ts)
      : typeof e.ts === "string"
        ? e.ts
        : rfc3339Nano(BigInt(e.ts.getTime()) * 1_000_000n);
  // keys are constants: written as they are (none needs escaping), values through jsonString
  const c = encodedContext(ctx);
  let out =
    `{"schema_version":1,"ts":${jsonString(ts)},"proxy_id":${c.proxyId}` +
    `,"request_id":${jsonString(e.requestId)},"client_ip":${jsonString(e.clientIp)}` +
    `,"method":${jsonString(e.method)},"host":${jsonString(e.host)},"path":${jsonString(e.path)}`;
  if (e.service) out += `,"service":${jsonString(e.service)}`;
  if (e.credentialHandle) out += `,"credential_handle":${jsonString(e.credentialHandle)}`;
  if (e.injectionPoint) out += `,"injection_point":${jsonString(e.injectionPoint)}`;
  out += `,"status":${jsonString(e.status)}`;
  if (e.upstreamStatus) out += `,"upstream_status":${encodeValue(e.upstreamStatus)}`;
  out += `,"latency_ms":${encodeValue(e.latencyMs)}`;
  if (ctx.authMode) out += `,"auth_mode":${c.authMode}`;
  // Phase 2 keys, PHASE2 §1.5 order.
  const f: Array<[string, Value]> = [];
  if (e.protocol) f.push(["protocol", e.protocol]);
  if (e.upstreamProtocol) f.push(["upstream_protocol", e.upstreamProtocol]);
  if (e.workload) f.push(["workload", e.workload]);
  if (e.workloadVerified) f.push(["workload_verified", true]);
  if (e.hostPattern) f.push(["host_pattern", e.hostPattern]);
  if (e.reason) f.push(["reason", e.reason]);
  if (e.rule) f.push(["rule", e.rule]);
  if (e.placeholderService) f.push(["placeholder_service", e.placeholderService]);
  if (e.credentialHandles?.length) f.push(["credential_handles", e.credentialHandles]);
  if (e.injectionPoints?.length) f.push(["injection_points", e.injectionPoints]);
  if (prevSha256) f.push(["prev_sha256", prevSha256]);
  for (const [k, v] of f) out += `,"${k}":${encodeValue(v)}`;
  return out + "}\n";
}
