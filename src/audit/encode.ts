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
  const ms = Number(ns / 1_000_000n);
  const d = new Date(ms);
  const frac = ns % 1_000_000_000n;
  const f = frac === 0n ? "" : "." + pad(frac, 9).replace(/0+$/, "");
  return (
    `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}T` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}${f}Z`
  );
}

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

function encodeValue(v: Value): string {
  if (typeof v === "string") return goJsonString(v);
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  return "[" + v.map(goJsonString).join(",") + "]";
}

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
  const f: Array<[string, Value]> = [
    ["schema_version", 1],
    ["ts", ts],
    ["proxy_id", ctx.proxyId],
    ["request_id", e.requestId],
    ["client_ip", e.clientIp],
    ["method", e.method],
    ["host", e.host],
    ["path", e.path],
  ];
  if (e.service) f.push(["service", e.service]);
  if (e.credentialHandle) f.push(["credential_handle", e.credentialHandle]);
  if (e.injectionPoint) f.push(["injection_point", e.injectionPoint]);
  f.push(["status", e.status]);
  if (e.upstreamStatus) f.push(["upstream_status", e.upstreamStatus]);
  f.push(["latency_ms", e.latencyMs]);
  if (ctx.authMode) f.push(["auth_mode", ctx.authMode]);
  // Phase 2 keys, PHASE2 §1.5 order.
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
  let out = "{";
  for (let i = 0; i < f.length; i++) {
    const [k, v] = f[i]!;
    out += (i ? "," : "") + goJsonString(k) + ":" + encodeValue(v);
  }
  return out + "}\n";
}
