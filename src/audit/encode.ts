// Audit line encoding, byte for byte as the reference's Go json.Encoder output (docs/CONTRACT.md §11).
import { goJsonObject } from "../gojson/encode.ts";
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

export interface LineContext {
  proxyId: string;
  authMode?: string;
}

export function encodeAuditLine(e: AuditEntry, ctx: LineContext): string {
  const ts =
    typeof e.ts === "bigint"
      ? rfc3339Nano(e.ts)
      : typeof e.ts === "string"
        ? e.ts
        : rfc3339Nano(BigInt(e.ts.getTime()) * 1_000_000n);
  const f: Array<[string, string | number]> = [
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
  return goJsonObject(f);
}
