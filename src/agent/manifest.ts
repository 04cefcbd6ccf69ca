// The services manifest (`GET /v1/services`, and the standalone `--services` file): decoding with
// Go-like error texts (docs/CONTRACT.md §6) and the Phase 2 validation policy (shared/PHASE2.md §1.3,
// §1.4, §18).
//
//   manifestFromJson(json, "/v1/services") → Manifest | throws Error (startup exit 1, reload keeps the last good)
//   validateManifest(manifest)             → {warnings: [{msg, attrs}], rejected?: string}
//
// Policy: invalid *permissive* data (a service, a passthrough pattern) makes that entry unusable and
// is reported as one WARN each; invalid *restrictive* data (a blocked_hosts / blocked_cidrs entry)
// or a required feature this binary lacks rejects the whole manifest, because skipping a
// restriction would widen access. New service fields of the wrong JSON type make that service
// unusable; Phase 1 fields keep Phase 1's decode errors.
import * as v from "valibot";
import { FEATURES } from "../features.ts";
import { serviceProblems } from "../inject/index.ts";
import { createBlockList, servicePatterns } from "../match/index.ts";
import { parseHostPattern } from "../match/host.ts";
import { createCidrSet } from "../netguard/cidr.ts";
import type { InjectEntry, Manifest, Service } from "./types.ts";

const ServiceSchema = v.object({
  name: v.optional(v.nullable(v.string()), ""),
  host: v.optional(v.nullable(v.string()), ""),
  hosts: v.optional(v.unknown()),
  auth: v.optional(
    v.nullable(
      v.object({
        scheme: v.optional(v.nullable(v.string()), ""),
        credential: v.optional(v.nullable(v.string()), ""),
        header: v.optional(v.nullable(v.string()), ""),
        query: v.optional(v.nullable(v.string()), ""),
        username: v.optional(v.unknown()),
        username_credential: v.optional(v.unknown()),
        credentials: v.optional(v.unknown()),
        inject: v.optional(v.unknown()),
      }),
    ),
    {},
  ),
});
const ManifestSchema = v.object({
  schema_version: v.optional(v.nullable(v.pipe(v.number(), v.integer())), 0),
  identity: v.optional(v.nullable(v.string()), ""),
  environment: v.optional(v.nullable(v.string()), ""),
  services: v.optional(v.nullable(v.array(ServiceSchema)), []),
  passthrough_hosts: v.optional(v.nullable(v.array(v.nullable(v.string()))), []),
  blocked_hosts: v.optional(v.unknown()),
  blocked_cidrs: v.optional(v.unknown()),
  required_features: v.optional(v.unknown()),
});

/** Go's name for a JSON value's type in `json: cannot unmarshal <x> into …`. */
export function goValueName(x: unknown): string {
  if (Array.isArray(x)) return "array";
  if (x === null) return "null";
  if (typeof x === "object") return "object";
  return typeof x === "boolean" ? "bool" : typeof x;
}

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === "object" && x !== null && !Array.isArray(x);

/** null/absent → undefined; a list of strings → it; anything else → null (wrong type). */
function stringList(x: unknown): string[] | undefined | null {
  if (x === undefined || x === null) return undefined;
  if (!Array.isArray(x) || !x.every((e) => typeof e === "string")) return null;
  return x as string[];
}

type RawService = v.InferOutput<typeof ServiceSchema>;

function decodeService(s: RawService): Service {
  const problems: string[] = [];
  type RawAuth = { [K in "scheme" | "credential" | "header" | "query"]?: string | null } & {
    [K in "username" | "username_credential" | "credentials" | "inject"]?: unknown;
  };
  const a: RawAuth = s.auth ?? {};
  const out: Service = {
    name: s.name ?? "",
    host: s.host ?? "",
    auth: {
      scheme: a.scheme ?? "",
      credential: a.credential ?? "",
      ...(a.header ? { header: a.header } : {}),
      ...(a.query ? { query: a.query } : {}),
    },
  };
  const hosts = stringList(s.hosts);
  if (hosts === null) problems.push("hosts is not a list of strings");
  else if (hosts) out.hosts = hosts;

  if (a.username !== undefined && a.username !== null) {
    if (typeof a.username === "string")
      out.auth.username = a.username; // "" is a user name
    else problems.push("auth.username is not a string");
  }
  if (a.username_credential !== undefined && a.username_credential !== null && a.username_credential !== "") {
    if (typeof a.username_credential === "string") out.auth.usernameCredential = a.username_credential;
    else problems.push("auth.username_credential is not a string");
  }
  if (a.credentials !== undefined && a.credentials !== null) {
    if (isObject(a.credentials) && Object.values(a.credentials).every((x) => typeof x === "string")) {
      const m: Record<string, string> = Object.create(null);
      for (const [k, x] of Object.entries(a.credentials)) m[k] = x as string;
      out.auth.credentials = m;
    } else problems.push("auth.credentials is not an object of strings");
  }
  if (a.inject !== undefined && a.inject !== null) {
    if (!Array.isArray(a.inject)) problems.push("auth.inject is not a list");
    else {
      const entries: InjectEntry[] = [];
      a.inject.forEach((e, i) => {
        if (!isObject(e)) return problems.push(`auth.inject[${i}] is not an object`);
        const entry: InjectEntry = { type: "" };
        for (const f of ["type", "name", "value", "username", "password"] as const) {
          const x = e[f];
          if (x === undefined || x === null) continue;
          if (typeof x !== "string") problems.push(`auth.inject[${i}].${f} is not a string`);
          else entry[f] = x;
        }
        entries.push(entry);
      });
      out.auth.inject = entries;
    }
  }
  if (problems.length) out.decodeProblems = problems;
  return out;
}

/** Validate a /v1/services-shaped document (also the standalone services file). Throws Error. */
export function manifestFromJson(json: unknown, source = "/v1/services"): Manifest {
  const parsed = v.safeParse(ManifestSchema, json);
  if (!parsed.success) {
    const issue = parsed.issues[0];
    const path = issue.path?.map((p) => String(p.key)).join(".") ?? "";
    throw new Error(
      `agent: decode ${source}: json: cannot unmarshal ${goValueName(issue.input)} into Go ${path ? `struct field ServicesResponse.${path}` : "value of type agent.ServicesResponse"}`,
    );
  }
  const m = parsed.output;
  if (m.schema_version !== 1) throw new Error(`agent: ${source} schema_version=${m.schema_version ?? 0}, expected 1`);
  const lists: Record<"required_features" | "blocked_hosts" | "blocked_cidrs", string[]> = {
    required_features: [],
    blocked_hosts: [],
    blocked_cidrs: [],
  };
  for (const k of ["required_features", "blocked_hosts", "blocked_cidrs"] as const) {
    const l = stringList(m[k]);
    if (l === null) throw new Error(`agent: ${source} rejected: ${k} is not a list of strings`);
    lists[k] = l ?? [];
  }
  for (const f of lists.required_features) {
    if (!FEATURES.includes(f))
      throw new Error(`agent: ${source} requires feature ${JSON.stringify(f)} that this clef-proxy does not support`);
  }
  const manifest: Manifest = {
    schemaVersion: 1,
    identity: m.identity ?? "",
    environment: m.environment ?? "",
    services: (m.services ?? []).map(decodeService),
    passthroughHosts: (m.passthrough_hosts ?? []).map((h) => h ?? ""),
    ...(lists.blocked_hosts.length ? { blockedHosts: lists.blocked_hosts } : {}),
    ...(lists.blocked_cidrs.length ? { blockedCidrs: lists.blocked_cidrs } : {}),
    ...(lists.required_features.length ? { requiredFeatures: lists.required_features } : {}),
  };
  const rejected = rejection(manifest);
  if (rejected) throw new Error(`agent: ${source} rejected: ${rejected}`);
  return manifest;
}

/** Why the whole manifest must be refused (restrictive data that cannot be applied), or undefined. */
function rejection(m: Manifest): string | undefined {
  for (const f of m.requiredFeatures ?? [])
    if (!FEATURES.includes(f)) return `requires feature ${JSON.stringify(f)} that this clef-proxy does not support`;
  try {
    createBlockList(m.blockedHosts ?? []);
    createCidrSet(m.blockedCidrs ?? []);
  } catch (e) {
    return (e as Error).message;
  }
  return undefined;
}

export interface ManifestWarning {
  msg: string;
  attrs: Array<[string, string]>;
}

export interface ManifestReport {
  /** One WARN line each, in manifest order (log with `warn(w.msg, w.attrs)`). */
  warnings: ManifestWarning[];
  /** Set when the manifest must not be used (startup exit 1; reload keeps the last good one). */
  rejected?: string;
}

/**
 * The load-time report (PHASE2 §1.4): `service can never be served` per problem of each service
 * (Phase 1's §18.10 line, same attrs), `manifest entry ignored` per invalid passthrough pattern,
 * `manifest entry shadowed by blocked_hosts` per service or passthrough pattern a block covers
 * entirely, and `rejected` for restrictive data that cannot be applied.
 */
export function validateManifest(m: Manifest): ManifestReport {
  const rejected = rejection(m);
  if (rejected) return { warnings: [], rejected };
  const warnings: ManifestWarning[] = [];
  const blocks = createBlockList(m.blockedHosts ?? []);
  m.services.forEach((s, i) => {
    for (const problem of serviceProblems(s))
      warnings.push({
        msg: "service can never be served",
        attrs: [
          ["service", s.name],
          ["host", s.host],
          ["problem", problem],
        ],
      });
    if (!m.blockedHosts?.length) return;
    servicePatterns(s).forEach((raw, j) => {
      const r = parseHostPattern(raw);
      const b = r.ok ? blocks.covers(r.pattern) : undefined;
      if (b === undefined || !r.ok) return;
      warnings.push({
        msg: "manifest entry shadowed by blocked_hosts",
        attrs: [
          ["field", j === 0 ? `services[${i}].host` : `services[${i}].hosts[${j - 1}]`],
          ["service", s.name],
          ["pattern", r.pattern.text],
          ["blocked_by", b],
        ],
      });
    });
  });
  m.passthroughHosts.forEach((raw, i) => {
    if (raw.trim() === "") return; // Phase 1 ignores empty entries silently
    const r = parseHostPattern(raw);
    if (!r.ok) {
      warnings.push({
        msg: "manifest entry ignored",
        attrs: [
          ["field", `passthrough_hosts[${i}]`],
          ["problem", `${JSON.stringify(raw)} is not a valid host pattern: ${r.problem}`],
        ],
      });
      return;
    }
    const b = blocks.covers(r.pattern);
    if (b !== undefined)
      warnings.push({
        msg: "manifest entry shadowed by blocked_hosts",
        attrs: [
          ["field", `passthrough_hosts[${i}]`],
          ["pattern", r.pattern.text],
          ["blocked_by", b],
        ],
      });
  });
  return { warnings };
}
