// Audit line encoding, byte for byte as the reference's Go json.Encoder output (docs/CONTRACT.md §11),
// plus the Phase 2 keys (shared/PHASE2.md §1.5) appended after auth_mode in their fixed order, each
// omitted when empty/false/zero/empty-array, so a Phase 1 request still encodes byte-identically.
import { flat } from "../flat.ts";
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
  splitNs(ns);
  return rfc3339(splitSec, splitNanos);
}

/**
 * rfc3339Nano for milliseconds since the epoch with their fraction (no BigInt: the data path's
 * timestamp). A double holds such a time to ≈0.25 µs, as finely as performance.now() reads it.
 */
export function rfc3339NanoMs(ms: number): string {
  splitMs(ms);
  return rfc3339(splitSec, splitNanos);
}

/** splitNs's and splitMs's answer: whole seconds since the epoch and the nanoseconds after them (0 ≤ nanos < 1e9). */
let splitSec = 0;
let splitNanos = 0;
function splitNs(ns: bigint): void {
  const sec = ns / 1_000_000_000n;
  splitSec = Number(sec);
  splitNanos = Number(ns - sec * 1_000_000_000n);
}
function splitMs(ms: number): void {
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
  splitSec = sec;
  splitNanos = nanos;
}

function rfc3339(sec: number, nanos: number): string {
  const text = secondText(sec);
  return nanos === 0 ? `${text}Z` : `${text}.${fractionDigits(nanos)}Z`;
}

/**
 * The date and time up to the second; it changes once a second, so it is formatted once — with the
 * audit line's opening up to it, which a line starts with (one part instead of three).
 */
function secondText(sec: number): string {
  if (sec !== cachedSecond) {
    const d = new Date(sec * 1000);
    cachedSecond = sec;
    cachedSecondText = flat(
      `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}T` +
        `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`,
    );
    cachedLineHead = flat(`${LINE_OPEN}${cachedSecondText}`);
    cachedLineHeadDot = flat(`${cachedLineHead}.`);
  }
  return cachedSecondText;
}

/** The digits after the point of 1–999,999,999 ns, trailing zeros trimmed (one string, no BigInt or regex). */
function fractionDigits(n: number): string {
  // 1e9 + n is "1" and the nine digits, leading zeros included (integer arithmetic only)
  const s = String(1e9 + n);
  let end = 10;
  while (s.charCodeAt(end - 1) === 48) end--;
  return s.slice(1, end);
}

let cachedSecond = -1;
let cachedSecondText = "";
const LINE_OPEN = '{"schema_version":1,"ts":"';
let cachedLineHead = "";
let cachedLineHeadDot = "";

/**
 * A line's opening, `{"schema_version":1,"ts":"` and the timestamp — without its `Z` (the run after it
 * starts with `Z`), except for a string ts, which is written as given.
 */
function lineHead(ts: AuditEntry["ts"]): string {
  if (typeof ts === "number") splitMs(ts);
  else if (typeof ts === "bigint") splitNs(ts);
  else if (ts instanceof Date) splitMs(ts.getTime());
  else return `${LINE_OPEN}${inner(ts)}`; // (an RFC 3339 text, as the contents of its JSON string)
  secondText(splitSec);
  return splitNanos === 0 ? cachedLineHead : `${cachedLineHeadDot}${fractionDigits(splitNanos)}`;
}

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

/** A JSON string's content, without its quotes (the quotes are in the line's constant parts). */
function inner(s: string): string {
  return JSON_PLAIN.test(s) ? s : goJsonString(s).slice(1, -1);
}

function encodeValue(v: Value): string {
  if (typeof v === "string") return `"${inner(v)}"`;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  return "[" + v.map(goJsonString).join(",") + "]";
}

interface EncodedContext {
  for: string;
  forAuth: string | undefined;
  /** `","proxy_id":"…","request_id":"`: from the timestamp's closing quote to the request id. */
  idRun: string;
  /** The same after the timestamp's `Z`. */
  idRunZ: string;
  authMode: string;
}

/** The context's values, encoded once per context object (they are the same on every line). */
function encodedContext(ctx: LineContext): EncodedContext {
  let c = contexts.get(ctx);
  if (c === undefined || c.for !== ctx.proxyId || c.forAuth !== ctx.authMode) {
    const idRun = flat(`","proxy_id":"${inner(ctx.proxyId)}","request_id":"`);
    c = {
      for: ctx.proxyId,
      forAuth: ctx.authMode,
      idRun,
      idRunZ: flat(`Z${idRun}`),
      authMode: ctx.authMode ? flat(inner(ctx.authMode)) : "",
    };
    contexts.set(ctx, c);
  }
  return c;
}
const contexts = new WeakMap<LineContext, EncodedContext>();

/**
 * From the path's closing quote to the status: `"` and the service, credential_handle and
 * injection_point keys present, remembered per service name with the values it was made for (a
 * service's handle and injection point are the same on each of its lines). Bounded.
 */
function serviceRun(service = "", handle = "", point = ""): string {
  if (service === "" && handle === "" && point === "") return '"';
  const r = serviceRuns.get(service);
  if (r !== undefined && r.handle === handle && r.point === point) return r.text;
  let text = '"';
  if (service) text += `,"service":"${inner(service)}"`;
  if (handle) text += `,"credential_handle":"${inner(handle)}"`;
  if (point) text += `,"injection_point":"${inner(point)}"`;
  if (serviceRuns.size >= 256) serviceRuns.clear();
  serviceRuns.set(service, { handle, point, text: flat(text) });
  return text;
}
const serviceRuns = new Map<string, { handle: string; point: string; text: string }>();

/** `,"status":"…",` and the key of the number that follows (upstream_status, else latency_ms). */
function statusRun(status: string, upstream: boolean): string {
  const runs = STATUS_RUNS.get(status);
  if (runs !== undefined) return upstream ? runs[0] : runs[1];
  return upstream ? `,"status":"${inner(status)}","upstream_status":` : `,"status":"${inner(status)}","latency_ms":`;
}
const STATUS_RUNS: ReadonlyMap<string, readonly [string, string]> = new Map(
  ["injected", "passthrough", "denied", "agent_error", "tls_error"].map((s) => [
    s,
    [flat(`,"status":"${s}","upstream_status":`), flat(`,"status":"${s}","latency_ms":`)] as const,
  ]),
);

/**
 * One audit line with its trailing newline. `prevSha256` (hash chain, PHASE2 §17) is the last key;
 * `traceparent` is never encoded (it only feeds the OTLP export's trace/span ids).
 */
export function encodeAuditLine(e: AuditEntry, ctx: LineContext, prevSha256?: string): string {
  // Few parts: the constant runs between the values are made once (per second, per context, per
  // service, per status), so the line is cheap to flatten when it is written (docs/PERFORMANCE.md).
  const c = encodedContext(ctx);
  const head = lineHead(e.ts);
  let out =
    `${head}${typeof e.ts === "string" ? c.idRun : c.idRunZ}${inner(e.requestId)}","client_ip":"${inner(e.clientIp)}",` +
    `"method":"${inner(e.method)}","host":"${inner(e.host)}","path":"${inner(e.path)}` +
    `${serviceRun(e.service, e.credentialHandle, e.injectionPoint)}`;
  out = e.upstreamStatus
    ? `${out}${statusRun(e.status, true)}${e.upstreamStatus},"latency_ms":${e.latencyMs}`
    : `${out}${statusRun(e.status, false)}${e.latencyMs}`;
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
