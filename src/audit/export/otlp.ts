// OTLP/HTTP JSON logs export of the audit trail (shared/PHASE2.md §15, F13; docs/CONTRACT.md §11
// "Exports"): one LogRecord per audit line, POSTed to <endpoint>/v1/logs as
// ExportLogsServiceRequest in the OTLP protobuf JSON mapping (lowerCamelCase field names, 64-bit
// integers as decimal strings, enums as numbers, trace/span ids as lower-case hex).
//
//   resource  service.name=clef-proxy, service.version, service.instance.id=<proxy_id>,
//             clef.identity, clef.environment (from the manifest, when set)
//   scope     clef-proxy.audit (version = service.version)
//   record    timeUnixNano = ts (request start), observedTimeUnixNano = when the line was written,
//             severityNumber 9 INFO (injected, passthrough) / 13 WARN (denied) / 17 ERROR
//             (agent_error, tls_error), eventName clef.proxy.audit, body.stringValue = the exact
//             line without its newline, attributes clef.audit.<key> for every key of the line plus
//             http.request.method, server.address, server.port, url.path,
//             http.response.status_code (= upstream_status), client.address; traceId/spanId/flags
//             from the request's W3C traceparent when it was valid.
// Retryable answers (OTLP/HTTP): 429, 502, 503, 504. A partialSuccess is logged (WARN, at most once
// a minute) with its rejected count.
import { warn } from "../../log/slog.ts";
import { entryTsNs, nowNs } from "../encode.ts";
import type { AuditEntry } from "../types.ts";
import type { ExportProtocol } from "./engine.ts";
import type { PostResult } from "./transport.ts";

export interface TraceContext {
  traceId: string;
  spanId: string;
  flags: number;
}

/** A W3C traceparent (trace-context §3.2) → ids, or null when absent or invalid. */
export function parseTraceparent(v: string | undefined): TraceContext | null {
  if (!v) return null;
  const m = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/.exec(v.trim());
  if (!m) return null;
  const [, version, traceId, spanId, flags, rest] = m;
  if (version === "ff") return null;
  if (version === "00" && rest !== undefined) return null;
  if (/^0+$/.test(traceId!) || /^0+$/.test(spanId!)) return null;
  return { traceId: traceId!, spanId: spanId!, flags: parseInt(flags!, 16) };
}

export interface OtlpItem {
  line: string;
  tsNs: bigint;
  observedNs: bigint;
  trace: TraceContext | null;
}

export interface OtlpResource {
  proxyId: string;
  version: string;
  identity?: string;
  environment?: string;
}

type AnyValue =
  | { stringValue: string }
  | { boolValue: boolean }
  | { intValue: string }
  | { doubleValue: number }
  | { arrayValue: { values: AnyValue[] } };

interface KeyValue {
  key: string;
  value: AnyValue;
}

function anyValue(v: unknown): AnyValue {
  if (typeof v === "string") return { stringValue: v };
  if (typeof v === "boolean") return { boolValue: v };
  if (typeof v === "number") return Number.isInteger(v) ? { intValue: String(v) } : { doubleValue: v };
  if (Array.isArray(v)) return { arrayValue: { values: v.map(anyValue) } };
  return { stringValue: JSON.stringify(v) };
}

const str = (key: string, v: string): KeyValue => ({ key, value: { stringValue: v } });

const SEVERITY: Record<string, [number, string]> = {
  injected: [9, "INFO"],
  passthrough: [9, "INFO"],
  denied: [13, "WARN"],
  agent_error: [17, "ERROR"],
  tls_error: [17, "ERROR"],
};

/** "api.test:19443" → ["api.test", 19443]; "[::1]:443" → ["::1", 443]; no port → [host, null]. */
export function splitHostPort(host: string): [string, number | null] {
  const v6 = /^\[([^\]]*)\](?::(\d+))?$/.exec(host);
  if (v6) return [v6[1]!, v6[2] ? Number(v6[2]) : null];
  const m = /^([^:]*):(\d+)$/.exec(host);
  if (m) return [m[1]!, Number(m[2])];
  return [host, null];
}

export function logRecord(item: OtlpItem): Record<string, unknown> {
  const text = item.line.endsWith("\n") ? item.line.slice(0, -1) : item.line;
  const fields = JSON.parse(text) as Record<string, unknown>;
  const attributes: KeyValue[] = Object.entries(fields).map(([k, v]) => ({
    key: `clef.audit.${k}`,
    value: anyValue(v),
  }));
  if (typeof fields.method === "string") attributes.push(str("http.request.method", fields.method));
  if (typeof fields.host === "string" && fields.host !== "") {
    const [addr, port] = splitHostPort(fields.host);
    if (addr) attributes.push(str("server.address", addr));
    if (port !== null) attributes.push({ key: "server.port", value: { intValue: String(port) } });
  }
  if (typeof fields.path === "string") attributes.push(str("url.path", fields.path));
  if (typeof fields.upstream_status === "number")
    attributes.push({ key: "http.response.status_code", value: { intValue: String(fields.upstream_status) } });
  if (typeof fields.client_ip === "string" && fields.client_ip !== "")
    attributes.push(str("client.address", fields.client_ip));
  const [severityNumber, severityText] = SEVERITY[String(fields.status)] ?? [9, "INFO"];
  const rec: Record<string, unknown> = {
    timeUnixNano: String(item.tsNs),
    observedTimeUnixNano: String(item.observedNs),
    severityNumber,
    severityText,
    body: { stringValue: text },
    attributes,
    eventName: "clef.proxy.audit",
  };
  if (item.trace) {
    rec.traceId = item.trace.traceId;
    rec.spanId = item.trace.spanId;
    rec.flags = item.trace.flags;
  }
  return rec;
}

export function exportRequest(items: OtlpItem[], res: OtlpResource): Record<string, unknown> {
  const attributes: KeyValue[] = [
    str("service.name", "clef-proxy"),
    str("service.version", res.version),
    str("service.instance.id", res.proxyId),
  ];
  if (res.identity) attributes.push(str("clef.identity", res.identity));
  if (res.environment) attributes.push(str("clef.environment", res.environment));
  return {
    resourceLogs: [
      {
        resource: { attributes },
        scopeLogs: [{ scope: { name: "clef-proxy.audit", version: res.version }, logRecords: items.map(logRecord) }],
      },
    ],
  };
}

/** OTLP/HTTP: 429, 502, 503 and 504 are retryable; any other non-2xx is permanent. */
export function otlpRetryable(status: number): boolean {
  return status === 429 || status === 502 || status === 503 || status === 504;
}

/** The partialSuccess of an ExportLogsServiceResponse, when it reports a rejection. */
export function partialSuccess(body: string): { rejected: number; message: string } | null {
  let obj: unknown;
  try {
    obj = JSON.parse(body);
  } catch {
    return null;
  }
  const ps = (obj as { partialSuccess?: { rejectedLogRecords?: unknown; errorMessage?: unknown } })?.partialSuccess;
  if (!ps || typeof ps !== "object") return null;
  const rejected = Number(ps.rejectedLogRecords ?? 0) || 0;
  const message = typeof ps.errorMessage === "string" ? ps.errorMessage : "";
  if (rejected === 0 && message === "") return null;
  return { rejected, message: message.slice(0, 200) };
}

export function otlpProtocol(resource: OtlpResource, logUrl: string): ExportProtocol<OtlpItem> {
  let lastWarn = Number.NEGATIVE_INFINITY;
  return {
    name: "otlp",
    item: (line: string, entry: AuditEntry) => ({
      line,
      tsNs: entryTsNs(entry.ts),
      observedNs: nowNs(),
      trace: parseTraceparent(entry.traceparent),
    }),
    body: (items) => JSON.stringify(exportRequest(items, resource)),
    headers: () => ({ "Content-Type": "application/json", "User-Agent": `clef-proxy/${resource.version}` }),
    retryable: otlpRetryable,
    delivered(res: PostResult, lines: number) {
      const ps = partialSuccess(res.body);
      if (!ps || Date.now() - lastWarn < 60_000) return;
      lastWarn = Date.now();
      warn("audit export: receiver rejected some records", [
        ["sink", "otlp"],
        ["url", logUrl],
        ["rejected_log_records", ps.rejected],
        ["lines", lines],
        ["error_message", ps.message],
      ]);
    },
  };
}
