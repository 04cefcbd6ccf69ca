// Reading, deleting and validating the config file (docs/CONTRACT.md §4).
//
// The file is deleted right after it is read, whether or not it parses (it may hold proxy_auth).
// Decoding follows Go's encoding/json (unknown fields ignored, null = empty, case-insensitive keys,
// Go's type-error texts); validation is a valibot pipeline per field with the reference's messages.
import { readFileSync, unlinkSync } from "node:fs";
import { hostname } from "node:os";
import * as v from "valibot";
import { formatGoDuration, parseGoDuration } from "./duration.ts";
import { isLoopbackHost } from "../http/corporate-proxy.ts";
import { type JNode, GoJsonError, kindName, member, parseGoJson } from "../gojson/decode.ts";
import { closest } from "./suggest.ts";
import type { Config } from "./types.ts";

/** `message` is the full line the CLI prints (already framed `clef-proxy serve: …`); exit code 2. */
export class ConfigError extends Error {}

const NS_PER_MS = 1_000_000n;
const DEFAULT_DRAIN = 5_000_000_000n;
const LAMBDA_DRAIN = 1_000_000_000n;
const DRAIN_CAP = 60_000_000_000n;

class TypeErr extends Error {}

type Shape =
  | { kind: "int" | "string" | "bool" | "strings" | "headers" }
  | { kind: "struct"; goName: string; fields: Record<string, Shape> }
  | { kind: "duration"; label: string };

const SCHEMA: Extract<Shape, { kind: "struct" }> = {
  kind: "struct",
  goName: "config.Config",
  fields: {
    listen: { kind: "struct", goName: "config.ListenConfig", fields: { port: { kind: "int" } } },
    upstream: {
      kind: "struct",
      goName: "config.UpstreamConfig",
      fields: { proxy_url: { kind: "string" }, no_proxy: { kind: "strings" }, proxy_auth: { kind: "string" } },
    },
    audit: {
      kind: "struct",
      goName: "config.AuditConfig",
      fields: {
        destination: { kind: "string" },
        file: { kind: "string" },
        max_size_mb: { kind: "int" },
        max_files: { kind: "int" },
        hash_chain: { kind: "bool" },
        webhook: {
          kind: "struct",
          goName: "config.WebhookConfig",
          fields: {
            url: { kind: "string" },
            hmac_secret: { kind: "string" },
            headers: { kind: "headers" },
            batch_max_lines: { kind: "int" },
            flush_interval: { kind: "duration", label: "audit.webhook.flush_interval" },
            timeout: { kind: "duration", label: "audit.webhook.timeout" },
            queue_max_lines: { kind: "int" },
          },
        },
        otlp: {
          kind: "struct",
          goName: "config.OTLPConfig",
          fields: {
            endpoint: { kind: "string" },
            enabled: { kind: "bool" },
            headers: { kind: "headers" },
            timeout: { kind: "duration", label: "audit.otlp.timeout" },
            queue_max_lines: { kind: "int" },
          },
        },
      },
    },
    ca: {
      kind: "struct",
      goName: "config.CAConfig",
      fields: { cert_path: { kind: "string" }, key_path: { kind: "string" } },
    },
    metadata: { kind: "struct", goName: "config.MetadataConfig", fields: { proxy_id: { kind: "string" } } },
    serve: {
      kind: "struct",
      goName: "config.ServeConfig",
      fields: { drain_timeout: { kind: "duration", label: "drain_timeout" } },
    },
    lambda_loopback_only: { kind: "bool" },
    metrics: {
      kind: "struct",
      goName: "config.MetricsConfig",
      fields: { port: { kind: "int" }, token: { kind: "string" } },
    },
  },
};

/** Decode like json.Unmarshal into the Go structs: returns plain values; records the first type error. */
function decode(root: JNode): Record<string, unknown> {
  let firstErr: string | null = null;
  const typeErr = (node: JNode, goType: string, structName: string | null, path: string) => {
    if (firstErr) return;
    const what = node.t === "num" && goType === "int" ? `number ${node.raw}` : kindName(node);
    firstErr = structName
      ? `json: cannot unmarshal ${what} into Go struct field ${structName}.${path} of type ${goType}`
      : `json: cannot unmarshal ${what} into Go value of type ${goType}`;
  };
  const shortName = (goName: string) => goName.split(".").pop()!;

  function walk(node: JNode, shape: Shape, structName: string | null, path: string): unknown {
    if (node.t === "null") return undefined;
    switch (shape.kind) {
      case "int":
        if (node.t !== "num") return typeErr(node, "int", structName, path);
        if (!/^-?\d+$/.test(node.raw) || BigInt(node.raw) > (1n << 63n) - 1n || BigInt(node.raw) < -(1n << 63n))
          return typeErr(node, "int", structName, path);
        return Number(node.raw);
      case "string":
        if (node.t !== "str") return typeErr(node, "string", structName, path);
        return node.v;
      case "bool":
        if (node.t !== "bool") return typeErr(node, "bool", structName, path);
        return node.v;
      case "strings": {
        if (node.t !== "arr") return typeErr(node, "[]string", structName, path);
        const out: string[] = [];
        for (const item of node.v) {
          if (item.t === "null") out.push("");
          else if (item.t !== "str") typeErr(item, "string", structName, path);
          else out.push(item.v);
        }
        return out;
      }
      case "duration":
        // config.Duration.UnmarshalJSON: a JSON string holding a Go duration.
        if (node.t !== "str") {
          if (!firstErr)
            firstErr = `config: ${shape.label} must be a duration string: json: cannot unmarshal ${kindName(node)} into Go value of type string`;
          return undefined;
        }
        if (node.v === "") return undefined;
        try {
          return parseGoDuration(node.v);
        } catch (e) {
          if (!firstErr) firstErr = `config: invalid ${shape.label} ${JSON.stringify(node.v)}: ${(e as Error).message}`;
          return undefined;
        }
      case "headers": {
        // map[string]string (audit.webhook.headers, audit.otlp.headers), in the file's order.
        if (node.t !== "obj") return typeErr(node, "map[string]string", structName, path);
        const out: Array<[string, string]> = [];
        for (const [k, item] of node.v) {
          if (item.t === "null") out.push([k, ""]);
          else if (item.t !== "str") typeErr(item, "string", structName, `${path}.${k}`);
          else out.push([k, item.v]);
        }
        return out;
      }
      case "struct": {
        if (node.t !== "obj") return typeErr(node, shape.goName, structName, path);
        const out: Record<string, unknown> = {};
        for (const [name, sub] of Object.entries(shape.fields)) {
          const m = member(node, name);
          if (m === undefined) continue;
          const subPath = path ? `${path}.${name}` : name;
          out[name] = walk(m, sub, shortName(shape.goName), subPath);
        }
        return out;
      }
    }
  }
  const out = walk(root, SCHEMA, null, "") as Record<string, unknown> | undefined;
  if (firstErr) throw new TypeErr(firstErr);
  return out ?? {};
}

/** A config key no field matches (Go ignores it), with the closest known field when one is close. */
export interface UnknownField {
  path: string;
  suggestion: string | null;
}

type StructShape = Extract<Shape, { kind: "struct" }>;

/** Every known field path in schema order, e.g. "listen", "listen.port", … */
function knownPaths(shape: StructShape, prefix = ""): string[] {
  const out: string[] = [];
  for (const [name, sub] of Object.entries(shape.fields)) {
    const path = prefix ? `${prefix}.${name}` : name;
    out.push(path);
    if (sub.kind === "struct") out.push(...knownPaths(sub, path));
  }
  return out;
}

/**
 * Keys of the config that no field matches (case-insensitively, as Go's encoding/json matches them).
 * The suggestion is the known field closest to the key: a full path typed as one key
 * (`{"listen.port": 1}`), then a sibling, then a field elsewhere (`{"port": 1}` → `listen.port`);
 * the first of equally close candidates wins.
 */
export function unknownFields(root: JNode, shape: StructShape = SCHEMA): UnknownField[] {
  const all = knownPaths(shape);
  const out: UnknownField[] = [];
  const walk = (node: JNode, sh: StructShape, prefix: string) => {
    if (node.t !== "obj") return;
    const names = Object.keys(sh.fields);
    for (const [key, value] of node.v) {
      const known = names.find((n) => n.toLowerCase() === key.toLowerCase());
      const path = prefix ? `${prefix}.${key}` : key;
      if (known) {
        const sub = sh.fields[known]!;
        if (sub.kind === "struct") walk(value, sub, path);
        continue;
      }
      const siblings = names.map((n) => [n, prefix ? `${prefix}.${n}` : n] as const);
      const elsewhere = all.map((p) => [p.slice(p.lastIndexOf(".") + 1), p] as const);
      const byPath = all.map((p) => [p, p] as const);
      out.push({ path, suggestion: closest(key, [...byPath, ...siblings, ...elsewhere]) });
    }
  };
  walk(root, shape, "");
  return out;
}

/** Go url.Parse's errors for the cases a proxy URL hits (scheme detection, colon in first segment). */
export function goUrlParseError(raw: string): string | null {
  if (/[\x00-\x1f\x7f]/.test(raw)) return `parse ${JSON.stringify(raw)}: net/url: invalid control character in URL`;
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!;
    if (/[a-zA-Z]/.test(c)) continue;
    if (/[0-9+\-.]/.test(c)) {
      if (i === 0) break;
      continue;
    }
    if (c === ":") {
      if (i === 0) return `parse ${JSON.stringify(raw)}: missing protocol scheme`;
      return null; // has a scheme
    }
    break;
  }
  // No scheme: a first path segment containing ':' is an error.
  if (!raw.startsWith("/")) {
    const seg = raw.split("/")[0]!;
    if (seg.includes(":")) return `parse ${JSON.stringify(raw)}: first path segment in URL cannot contain colon`;
  }
  return null;
}

export function proxyUrlScheme(raw: string): string {
  const m = /^([a-zA-Z][a-zA-Z0-9+\-.]*):/.exec(raw);
  return m ? m[1]!.toLowerCase() : "";
}

const check = <T>(msg: (x: T) => string, ok: (x: T) => boolean) =>
  v.check<T, (issue: v.CheckIssue<T>) => string>(ok, (issue) => msg(issue.input));

// One valibot pipeline per rule, evaluated in the reference's order; the first failure is reported.
const portRule = v.pipe(
  v.number(),
  check(
    (p: number) => `listen.port: ${p} out of range (1-65535)`,
    (p) => p >= 1 && p <= 65535,
  ),
);
const metricsPortRule = v.pipe(
  v.number(),
  check(
    (p: number) => `metrics.port: ${p} out of range (1-65535)`,
    (p) => p >= 1 && p <= 65535,
  ),
);
const proxyUrlRule = v.pipe(
  v.string(),
  check(
    (u: string) => `upstream.proxy_url: ${goUrlParseError(u)}`,
    (u) => goUrlParseError(u) === null,
  ),
  check(
    (u: string) => `upstream.proxy_url: scheme must be http|https, got ${JSON.stringify(proxyUrlScheme(u))}`,
    (u) => ["http", "https"].includes(proxyUrlScheme(u)),
  ),
);
const destinationRule = v.pipe(
  v.string(),
  check(
    (d: string) => `audit.destination: ${JSON.stringify(d)} not one of "stdout"|"file"`,
    (d) => d === "stdout" || d === "file",
  ),
);
const nonNegative = (field: string) =>
  v.pipe(
    v.number(),
    check(
      () => `${field}: cannot be negative`,
      (n: number) => n >= 0,
    ),
  );

function firstIssue(schema: v.GenericSchema, input: unknown): string | null {
  const r = v.safeParse(schema, input);
  return r.success ? null : r.issues[0].message;
}

export type LoadEnv = Record<string, string | undefined> & {
  AWS_LAMBDA_FUNCTION_NAME?: string;
};

export interface ParseOptions {
  /** Called for each key no field matches (ignored, as Go does), before decoding and validation. */
  onUnknownField?: (f: UnknownField) => void;
}

/** Parse + validate config text. Throws Error with the unframed message and a `phase`. */
export function parseConfig(text: string, env: LoadEnv, opts: ParseOptions = {}): Config {
  let root: JNode;
  try {
    root = parseGoJson(text);
  } catch (e) {
    if (e instanceof GoJsonError) throw Object.assign(new Error(e.message), { phase: "parse" });
    throw e;
  }
  if (opts.onUnknownField) for (const f of unknownFields(root)) opts.onUnknownField(f);
  let raw: Record<string, any>;
  try {
    raw = decode(root);
  } catch (e) {
    throw Object.assign(new Error((e as Error).message), { phase: "parse" });
  }
  const fail = (msg: string) => {
    throw Object.assign(new Error(msg), { phase: "validate" });
  };
  const lambda = (env.AWS_LAMBDA_FUNCTION_NAME ?? "") !== "";

  const port = raw.listen?.port ?? 0;
  const cfg: Config = {
    listen: { port: port === 0 ? 8888 : port },
    upstream: {
      proxyUrl: raw.upstream?.proxy_url ?? "",
      noProxy: raw.upstream?.no_proxy ?? [],
      proxyAuth: raw.upstream?.proxy_auth ?? "",
    },
    audit: {
      destination: (raw.audit?.destination || "stdout") as "stdout" | "file",
      file: raw.audit?.file ?? "",
      maxSizeMb: raw.audit?.max_size_mb ?? 0,
      maxFiles: raw.audit?.max_files ?? 0,
    },
    ca: { certPath: raw.ca?.cert_path ?? "", keyPath: raw.ca?.key_path ?? "" },
    metadata: { proxyId: raw.metadata?.proxy_id || hostname() },
    serve: { drainTimeoutMs: 0, drainTimeoutText: "" },
    lambdaLoopbackOnly: raw.lambda_loopback_only ?? false,
    metrics: { port: raw.metrics?.port ?? 0, token: raw.metrics?.token ?? "" },
  };

  let m = firstIssue(portRule, cfg.listen.port);
  if (m) fail(m);
  if (cfg.upstream.proxyUrl !== "" && (m = firstIssue(proxyUrlRule, cfg.upstream.proxyUrl))) fail(m);
  if ((m = firstIssue(destinationRule, cfg.audit.destination))) fail(m);
  if (cfg.audit.destination === "file") {
    if (cfg.audit.file === "") fail(`audit.destination="file" requires audit.file`);
    if ((m = firstIssue(nonNegative("audit.max_size_mb"), cfg.audit.maxSizeMb))) fail(m);
    if ((m = firstIssue(nonNegative("audit.max_files"), cfg.audit.maxFiles))) fail(m);
  }
  if (cfg.audit.maxSizeMb === 0) cfg.audit.maxSizeMb = 100;
  if (cfg.audit.maxFiles === 0) cfg.audit.maxFiles = 5;
  const exportsProblem = auditExports(cfg, raw.audit ?? {}, env);
  if (exportsProblem) fail(exportsProblem);
  if ((cfg.ca.certPath === "") !== (cfg.ca.keyPath === ""))
    fail("ca.cert_path and ca.key_path must both be set or both empty");

  let drain: bigint = raw.serve?.drain_timeout ?? 0n;
  if (drain < 0n) fail(`serve.drain_timeout: ${formatGoDuration(drain)} must be positive`);
  if (drain > DRAIN_CAP)
    fail(`serve.drain_timeout: ${formatGoDuration(drain)} exceeds sanity cap of ${formatGoDuration(DRAIN_CAP)}`);
  if (drain === 0n) drain = lambda ? LAMBDA_DRAIN : DEFAULT_DRAIN;
  cfg.serve = { drainTimeoutMs: Number(drain / NS_PER_MS), drainTimeoutText: formatGoDuration(drain) };

  if (cfg.lambdaLoopbackOnly && !lambda) fail("lambda_loopback_only=true but AWS_LAMBDA_FUNCTION_NAME is not set");

  // Ours only (F14), checked after every rule the reference knows so its messages come first.
  if (cfg.metrics.port !== 0) {
    if ((m = firstIssue(metricsPortRule, cfg.metrics.port))) fail(m);
    if (cfg.metrics.port === cfg.listen.port) fail("metrics.port: equals listen.port");
  }
  return cfg;
}

// --- Phase 2 audit settings: hash_chain, webhook, otlp (shared/PHASE2.md §14, §15, §17) -------------

const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const RESERVED_HEADERS = new Set(["content-type", "content-length", "host"]);
const MS = 1_000_000n;

/** A receiver URL as messages may show it: without userinfo, query and fragment (they can be secrets). */
export function redactUrl(raw: string): string {
  return raw.replace(/^([^/?#]*\/\/)[^/?#]*@/, "$1").replace(/[?#][\s\S]*$/, "");
}

/** An export receiver URL: https, or http to a loopback host only. Messages never echo userinfo or query. */
function exportUrlProblem(field: string, raw: string): string | null {
  const parseErr = goUrlParseError(raw);
  if (parseErr) return `${field}: ${parseErr.replace(JSON.stringify(raw), JSON.stringify(redactUrl(raw)))}`;
  const scheme = proxyUrlScheme(raw);
  const bad = `${field}: scheme must be https (http only for loopback), got ${JSON.stringify(scheme)}`;
  if (scheme !== "https" && scheme !== "http") return bad;
  // As Go's url.Parse reads it: a host only after "//" ("https:///x" and "https:x" have none).
  const authority = /^[^:]+:\/\/([^/?#]*)/.exec(raw)?.[1] ?? "";
  if (authority.replace(/^.*@/, "").replace(/:\d*$/, "") === "")
    return `${field}: ${JSON.stringify(redactUrl(raw))} has no host`;
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return `${field}: parse ${JSON.stringify(redactUrl(raw))}: invalid URL`;
  }
  if (scheme === "http" && !isLoopbackHost(u.hostname)) return bad;
  return null;
}

/** Names are tokens, not Content-Type/Content-Length/Host; values are header-safe (never echoed). */
function headersProblem(field: string, headers: Array<[string, string]>): string | null {
  for (const [k, v] of headers) {
    if (!HEADER_NAME.test(k)) return `${field}: ${JSON.stringify(k)} is not a valid header name`;
    if (RESERVED_HEADERS.has(k.toLowerCase())) return `${field}: ${k} cannot be set`;
    if (/[^\t\x20-\x7e\x80-\xff]/.test(v))
      return `${field}: the value of ${k} contains CR, LF or another character not allowed in a header`;
  }
  return null;
}

/** OTEL_EXPORTER_OTLP_HEADERS: `k1=v1,k2=v2`, keys and values percent-decoded (W3C baggage form). */
function parseOtelHeaders(name: string, text: string): Array<[string, string]> | string {
  const out: Array<[string, string]> = [];
  let i = 0;
  for (const part of text.split(",")) {
    i++;
    if (part.trim() === "") continue;
    const eq = part.indexOf("=");
    if (eq <= 0) return `audit.otlp.headers: ${name}: entry ${i} is not key=value`;
    try {
      out.push([decodeURIComponent(part.slice(0, eq).trim()), decodeURIComponent(part.slice(eq + 1).trim())]);
    } catch {
      return `audit.otlp.headers: ${name}: entry ${i} has an invalid percent-encoding`;
    }
  }
  return out;
}

function intSetting(field: string, v: number | undefined, min: number, max: number, def: number): number | string {
  if (v === undefined || v === 0) return def;
  if (v < min || v > max) return `${field}: ${v} out of range (${min}-${max})`;
  return v;
}

function durSetting(field: string, ns: bigint | undefined, min: bigint, max: bigint, def: bigint): number | string {
  if (ns === undefined || ns === 0n) return Number(def / MS);
  if (ns < min || ns > max)
    return `${field}: ${formatGoDuration(ns)} out of range (${formatGoDuration(min)}-${formatGoDuration(max)})`;
  return Number(ns / MS);
}

/** Fills cfg.audit.hashChain / webhook / otlp; returns the first validation message, or null. */
function auditExports(cfg: Config, a: Record<string, any>, env: LoadEnv): string | null {
  if (a.hash_chain === true) cfg.audit.hashChain = true;
  const shared = (prefix: string, o: Record<string, any>) => {
    const timeoutMs = durSetting(`${prefix}.timeout`, o.timeout, 1000n * MS, 60_000n * MS, 10_000n * MS);
    if (typeof timeoutMs === "string") return timeoutMs;
    const queueMaxLines = intSetting(`${prefix}.queue_max_lines`, o.queue_max_lines, 1000, 10_000_000, 100_000);
    if (typeof queueMaxLines === "string") return queueMaxLines;
    return { timeoutMs, queueMaxLines };
  };

  const w = a.webhook as Record<string, any> | undefined;
  if (w && typeof w.url === "string" && w.url !== "") {
    const m = exportUrlProblem("audit.webhook.url", w.url) ?? headersProblem("audit.webhook.headers", w.headers ?? []);
    if (m) return m;
    const batchMaxLines = intSetting("audit.webhook.batch_max_lines", w.batch_max_lines, 1, 10_000, 500);
    if (typeof batchMaxLines === "string") return batchMaxLines;
    const flushIntervalMs = durSetting(
      "audit.webhook.flush_interval",
      w.flush_interval,
      100n * MS,
      60_000n * MS,
      1000n * MS,
    );
    if (typeof flushIntervalMs === "string") return flushIntervalMs;
    const sh = shared("audit.webhook", w);
    if (typeof sh === "string") return sh;
    cfg.audit.webhook = {
      url: w.url,
      headers: w.headers ?? [],
      hmacSecret: w.hmac_secret ?? "",
      batchMaxLines,
      flushIntervalMs,
      ...sh,
    };
  }

  // OTLP: on when audit.otlp.endpoint is set, or enabled:true with the endpoint from the env; the
  // OTEL_EXPORTER_OTLP_* variables are read only then (the workload's env is not the proxy's config).
  const o = a.otlp as Record<string, any> | undefined;
  if (o && o.enabled !== false && ((typeof o.endpoint === "string" && o.endpoint !== "") || o.enabled === true)) {
    let url: string;
    let field = "audit.otlp.endpoint";
    if (o.endpoint) {
      const m = exportUrlProblem(field, o.endpoint);
      if (m) return m;
      // A base URL (no path) gets the logs path, as OTEL_EXPORTER_OTLP_ENDPOINT; a URL with a path is used as is.
      const u = new URL(o.endpoint);
      url = o.endpoint;
      if (u.pathname === "/") {
        u.pathname = "/v1/logs";
        url = u.href;
      }
    } else if (env.OTEL_EXPORTER_OTLP_LOGS_ENDPOINT) {
      url = env.OTEL_EXPORTER_OTLP_LOGS_ENDPOINT;
      field = "audit.otlp.endpoint (OTEL_EXPORTER_OTLP_LOGS_ENDPOINT)";
      const m = exportUrlProblem(field, url);
      if (m) return m;
    } else if (env.OTEL_EXPORTER_OTLP_ENDPOINT) {
      field = "audit.otlp.endpoint (OTEL_EXPORTER_OTLP_ENDPOINT)";
      const m = exportUrlProblem(field, env.OTEL_EXPORTER_OTLP_ENDPOINT);
      if (m) return m;
      url = env.OTEL_EXPORTER_OTLP_ENDPOINT.replace(/\/+$/, "") + "/v1/logs";
    } else {
      return "audit.otlp.enabled: true but no endpoint: set audit.otlp.endpoint, OTEL_EXPORTER_OTLP_LOGS_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT";
    }
    let headers: Array<[string, string]> = o.headers ?? [];
    if (o.headers === undefined) {
      const name = env.OTEL_EXPORTER_OTLP_LOGS_HEADERS
        ? "OTEL_EXPORTER_OTLP_LOGS_HEADERS"
        : env.OTEL_EXPORTER_OTLP_HEADERS
          ? "OTEL_EXPORTER_OTLP_HEADERS"
          : null;
      if (name) {
        const parsed = parseOtelHeaders(name, env[name]!);
        if (typeof parsed === "string") return parsed;
        headers = parsed;
      }
    }
    const m = headersProblem("audit.otlp.headers", headers);
    if (m) return m;
    const sh = shared("audit.otlp", o);
    if (typeof sh === "string") return sh;
    cfg.audit.otlp = { url, headers, ...sh };
  }
  return null;
}

/**
 * Read, delete, parse and validate; throws ConfigError with the framed line. `keep` (for
 * `clef-proxy check`) leaves the file in place and frames messages `clef-proxy check: …`.
 */
export function loadConfig(path: string, env: LoadEnv, opts: ParseOptions & { keep?: boolean } = {}): Config {
  const prefix = opts.keep ? "clef-proxy check" : "clef-proxy serve";
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const reason =
      err.code === "ENOENT"
        ? "no such file or directory"
        : err.code === "EACCES"
          ? "permission denied"
          : err.code === "EISDIR"
            ? "is a directory"
            : err.message;
    throw new ConfigError(`${prefix}: read config ${JSON.stringify(path)}: open ${path}: ${reason}`);
  } finally {
    if (!opts.keep)
      try {
        unlinkSync(path);
      } catch {}
  }
  try {
    return parseConfig(text, env, opts);
  } catch (e) {
    const phase = (e as { phase?: string }).phase;
    if (phase === "parse")
      throw new ConfigError(`${prefix}: parse config ${JSON.stringify(path)}: ${(e as Error).message}`);
    if (phase === "validate")
      throw new ConfigError(`${prefix}: config ${JSON.stringify(path)}: ${(e as Error).message}`);
    throw e;
  }
}
