// Audit line encoding, byte for byte as the reference's Go json.Encoder output (docs/CONTRACT.md §11).
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

/** Go encoding/json string encoding with HTML escaping (json.Encoder default). */
export function goJsonString(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        out += s[i]! + s[i + 1]!;
        i++;
      } else out += "\\ufffd";
      continue;
    }
    if (c >= 0xdc00 && c <= 0xdfff) {
      out += "\\ufffd";
      continue;
    }
    switch (c) {
      case 0x22:
        out += '\\"';
        continue;
      case 0x5c:
        out += "\\\\";
        continue;
      case 0x0a:
        out += "\\n";
        continue;
      case 0x0d:
        out += "\\r";
        continue;
      case 0x09:
        out += "\\t";
        continue;
      case 0x3c:
        out += "\\u003c";
        continue;
      case 0x3e:
        out += "\\u003e";
        continue;
      case 0x26:
        out += "\\u0026";
        continue;
      case 0x2028:
        out += "\\u2028";
        continue;
      case 0x2029:
        out += "\\u2029";
        continue;
    }
    if (c < 0x20) out += "\\u00" + c.toString(16).padStart(2, "0");
    else out += s[i]!;
  }
  return out + '"';
}

/** Go json.Encoder for a flat object with string/number values in the given key order. */
export function goJsonObject(fields: Array<[string, string | number]>): string {
  return (
    "{" +
    fields.map(([k, v]) => `${goJsonString(k)}:${typeof v === "number" ? String(v) : goJsonString(v)}`).join(",") +
    "}\n"
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

/** Go json.Encoder output for a map[string]any-like value: keys sorted, trailing newline. */
export function goJsonEncode(value: unknown): string {
  const enc = (x: unknown): string => {
    if (x === null || x === undefined) return "null";
    if (typeof x === "string") return goJsonString(x);
    if (typeof x === "number" || typeof x === "boolean") return String(x);
    if (Array.isArray(x)) return "[" + x.map(enc).join(",") + "]";
    const keys = Object.keys(x as object).sort();
    return "{" + keys.map((k) => `${goJsonString(k)}:${enc((x as Record<string, unknown>)[k])}`).join(",") + "}";
  };
  return enc(value) + "\n";
}
