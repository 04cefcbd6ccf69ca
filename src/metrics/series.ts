// Every metric series clef-proxy exposes (shared/PHASE2.md §16, F14), declared in one place.
//
// Importing this module does no I/O and starts nothing: any module (the data path included) can
// import `series` and record, e.g. `series.netguardBlocks.inc({ reason: "cloud_metadata" })`.
// Values owned by other modules (audit queue, leaf cache, open connections) are read at scrape time
// through `setSources(...)`, which the serve lifecycle (or the data path) calls once.
//
// Label rules (F14 "Cardinality"): labels only from bounded sets. `service` ∈ manifest names ∪ {""},
// `workload` ∈ verified listed names ∪ {"unverified", ""}; `status`, `protocol`, `reason`,
// `endpoint`, `result`, `kind`, `event`, `sink`, `code` are enums (anything else → "other").
// No host, path, IP, user name or secret is ever a label value.
import { readdirSync } from "node:fs";
import type { AuditSinkStats } from "../audit/types.ts";
import { VERSION } from "../version.ts";
import { type LabelNormaliser, oneOf, Registry } from "./registry.ts";

const P = "clef_proxy_";

export const STATUSES = ["injected", "passthrough", "denied", "agent_error", "tls_error"] as const;
/** `reason` values (shared/PHASE2.md §18) plus "" for Phase 1 outcomes; new reasons are added here. */
export const REASONS = [
  "",
  "invalid_host",
  "blocked_host",
  "blocked_cidr",
  "workload_not_allowed",
  "rule_denied",
  "rule_not_allowed",
  "ambiguous_path",
  "body_unscannable",
  "placeholder_wrong_host",
  "placeholder_misplaced",
  "placeholder_cardinality",
  "placeholder_cleartext",
  "placeholder_absent",
  "cleartext_injection",
  "unsupported_protocol",
  "nested_connect",
  "grpc_requires_h2",
  "unsupported_method",
  "unsupported_target",
  "internal_error",
  "shutdown",
] as const;
export const CONNECTION_KINDS = ["plain", "tunnel_h1", "tunnel_h2", "upgraded"] as const;
export type ConnectionKind = (typeof CONNECTION_KINDS)[number];
export const AGENT_ENDPOINTS = ["ready", "services", "secrets"] as const;
export const AGENT_RESULTS = ["ok", "not_found", "unauthorized", "error"] as const;
export const NETGUARD_REASONS = ["cloud_metadata", "link_local", "blocked_cidr"] as const;
export const PLACEHOLDER_EVENTS = [
  "substituted",
  "wrong_host",
  "misplaced",
  "cardinality",
  "cleartext",
  "absent",
] as const;
/** HTTP/2 error codes (RFC 9113 §7), by number. */
export const H2_ERROR_CODES = [
  "NO_ERROR",
  "PROTOCOL_ERROR",
  "INTERNAL_ERROR",
  "FLOW_CONTROL_ERROR",
  "SETTINGS_TIMEOUT",
  "STREAM_CLOSED",
  "FRAME_SIZE_ERROR",
  "REFUSED_STREAM",
  "CANCEL",
  "COMPRESSION_ERROR",
  "CONNECT_ERROR",
  "ENHANCE_YOUR_CALM",
  "INADEQUATE_SECURITY",
  "HTTP_1_1_REQUIRED",
] as const;

// --- the bounded sets that come from the manifest ---
let serviceNames = new Set<string>();
let workloadNames = new Set<string>();

/** Called by the serve lifecycle whenever a manifest is applied: the allowed `service`/`workload` labels. */
export function setManifestLabels(m: { services: readonly string[]; workloads?: readonly string[] }): void {
  serviceNames = new Set(m.services);
  workloadNames = new Set(m.workloads ?? []);
}

const serviceLabel: LabelNormaliser = (v) => (serviceNames.has(v) ? v : "");
/** A workload label: a listed name (the caller passes a name only once verified), else "unverified"; "" = none. */
const workloadLabel: LabelNormaliser = (v) => (v === "" ? "" : workloadNames.has(v) ? v : "unverified");
const netguardReason: LabelNormaliser = (v) => {
  const k = v.toLowerCase().replace(/[ -]/g, "_");
  return (NETGUARD_REASONS as readonly string[]).includes(k) ? k : "other";
};
const h2Code: LabelNormaliser = (v) => {
  const byNumber = /^\d+$/.test(v) ? H2_ERROR_CODES[Number(v)] : undefined;
  if (byNumber) return byNumber;
  return (H2_ERROR_CODES as readonly string[]).includes(v) ? v : "other";
};
/** Free text that the agent (not the workload) controls: kept, but bounded in length. */
const agentText: LabelNormaliser = (v) => v.slice(0, 128);
const sha256Hex: LabelNormaliser = (v) => (/^[0-9a-f]{64}$/.test(v) ? v : "");
const version: LabelNormaliser = (v) => v.slice(0, 64);

// --- values read at scrape time ---
export interface Sources {
  /** Per-sink audit counters (src/audit `AuditSink.stats()`). */
  auditStats: () => AuditSinkStats[];
  /** Leaf certificates in the minter's cache (`createLeafMinter(...).size()`). */
  leafCacheSize: () => number;
  /** Leaf certificates minted since start (`createLeafMinter(...).stats().mints`). */
  leafMints: () => number;
  /** Open client connections by kind (the data path). */
  connectionsOpen: () => Partial<Record<ConnectionKind, number>>;
  /** Open HTTP/2 streams on the client leg (the data path). */
  h2StreamsOpen: () => number;
}
const sources: Sources = {
  auditStats: () => [],
  leafCacheSize: () => 0,
  leafMints: () => 0,
  connectionsOpen: () => ({}),
  h2StreamsOpen: () => 0,
};
export function setSources(s: Partial<Sources>): void {
  Object.assign(sources, s);
}

export const registry = new Registry();

function fdCount(): number[] {
  if (process.platform !== "linux") return [];
  try {
    return [readdirSync("/proc/self/fd").length - 1]; // minus the directory handle readdir itself holds
  } catch {
    return [];
  }
}

export const series = {
  requests: registry.counter({
    name: `${P}requests_total`,
    help: "Requests decided by the proxy (one per audit line), by audit status, service, client protocol and workload.",
    labels: { status: oneOf(STATUSES), service: serviceLabel, protocol: oneOf(["h1", "h2"]), workload: workloadLabel },
  }),
  denials: registry.counter({
    name: `${P}denials_total`,
    help: 'Denied requests by machine-readable reason ("" for the Phase 1 denials: not in manifest, ambiguous, misdirected).',
    labels: { reason: oneOf(REASONS) },
  }),
  requestDuration: registry.histogram({
    name: `${P}request_duration_seconds`,
    help: "Time from request start to its audit line (audit latency_ms), by audit status.",
    labels: { status: oneOf(STATUSES) },
  }),
  upstreamTtfb: registry.histogram({
    name: `${P}upstream_ttfb_seconds`,
    help: "Time from sending a request upstream to the upstream's response head.",
  }),
  connectionsOpen: registry.gauge({
    name: `${P}connections_open`,
    help: "Open client connections by kind.",
    labels: { kind: oneOf(CONNECTION_KINDS) },
    collect: () => {
      const got = sources.connectionsOpen();
      return CONNECTION_KINDS.map((kind) => [{ kind }, got[kind] ?? 0]);
    },
  }),
  h2StreamsOpen: registry.gauge({
    name: `${P}h2_streams_open`,
    help: "Open HTTP/2 streams on the client leg.",
    collect: () => sources.h2StreamsOpen(),
  }),
  h2Goaway: registry.counter({
    name: `${P}h2_goaway_total`,
    help: "HTTP/2 GOAWAY frames sent to clients, by error code.",
    labels: { code: h2Code },
  }),
  h2ClientResets: registry.counter({
    name: `${P}h2_client_resets_total`,
    help: "HTTP/2 streams reset by clients (RST_STREAM).",
  }),
  agentRequests: registry.counter({
    name: `${P}agent_requests_total`,
    help: "Calls to the agent by endpoint and result.",
    labels: { endpoint: oneOf(AGENT_ENDPOINTS), result: oneOf(AGENT_RESULTS) },
  }),
  secretCache: registry.counter({
    name: `${P}secret_cache_total`,
    help: "Secret lookups answered from the 5 s cache or a fetch already in flight (hit) or by a new agent call (miss).",
    labels: { result: oneOf(["hit", "miss"]) },
    initial: [{ result: "hit" }, { result: "miss" }],
  }),
  manifestReloads: registry.counter({
    name: `${P}manifest_reloads_total`,
    help: "Manifest reloads by result.",
    labels: { result: oneOf(["applied", "unchanged", "rejected", "error"]) },
  }),
  manifestLastApplied: registry.gauge({
    name: `${P}manifest_last_applied_timestamp_seconds`,
    help: "Unix time the current manifest was applied.",
  }),
  manifestInfo: registry.gauge({
    name: `${P}manifest_info`,
    help: "The manifest in use: identity, environment and SHA-256 of its bytes as received (value 1).",
    labels: { identity: agentText, environment: agentText, sha256: sha256Hex },
  }),
  auditLines: registry.counter({
    name: `${P}audit_lines_total`,
    help: "Audit lines by sink and result (written, dropped).",
    labels: { sink: oneOf(["stdout", "file", "webhook", "otlp"]), result: oneOf(["written", "dropped"]) },
    collect: () =>
      sources
        .auditStats()
        .flatMap((s) => [
          [{ sink: s.sink, result: "written" }, s.written] as [Record<string, string>, number],
          [{ sink: s.sink, result: "dropped" }, s.dropped] as [Record<string, string>, number],
        ]),
  }),
  auditQueue: registry.gauge({
    name: `${P}audit_queue_lines`,
    help: "Audit lines accepted and not yet written, by sink.",
    labels: { sink: oneOf(["stdout", "file", "webhook", "otlp"]) },
    collect: () => sources.auditStats().map((s) => [{ sink: s.sink }, s.queued]),
  }),
  leafMints: registry.counter({
    name: `${P}leaf_mints_total`,
    help: "Leaf certificates minted.",
    collect: () => sources.leafMints(),
  }),
  leafCacheSize: registry.gauge({
    name: `${P}leaf_cache_size`,
    help: "Leaf certificates in the minter's cache.",
    collect: () => sources.leafCacheSize(),
  }),
  netguardBlocks: registry.counter({
    name: `${P}netguard_blocks_total`,
    help: "Upstream addresses refused by netguard, by reason.",
    labels: { reason: netguardReason },
  }),
  placeholderEvents: registry.counter({
    name: `${P}placeholder_events_total`,
    help: "Placeholder credential events by service and event.",
    labels: { service: serviceLabel, event: oneOf(PLACEHOLDER_EVENTS) },
  }),
  workloadAuthFailures: registry.counter({
    name: `${P}workload_auth_failures_total`,
    help: "Requests refused with 407 (missing or wrong Proxy-Authorization).",
  }),
  buildInfo: registry.gauge({
    name: `${P}build_info`,
    help: "The running clef-proxy (value 1).",
    labels: { version },
  }),
  processResidentMemory: registry.gauge({
    name: "process_resident_memory_bytes",
    help: "Resident memory size in bytes.",
    collect: () => process.memoryUsage().rss,
  }),
  processCpu: registry.counter({
    name: "process_cpu_seconds_total",
    help: "Total user and system CPU time spent in seconds.",
    collect: () => {
      const u = process.cpuUsage();
      return (u.user + u.system) / 1e6;
    },
  }),
  processStartTime: registry.gauge({
    name: "process_start_time_seconds",
    help: "Start time of the process since unix epoch in seconds.",
    collect: () => Math.floor(performance.timeOrigin) / 1000,
  }),
  processOpenFds: registry.gauge({
    name: "process_open_fds",
    help: "Number of open file descriptors.",
    collect: () => fdCount().map((n) => [{}, n]),
  }),
};

series.buildInfo.set({ version: VERSION }, 1);
